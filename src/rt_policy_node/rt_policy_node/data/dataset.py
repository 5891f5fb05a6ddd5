"""The on-disk training dataset: its index (JSON) and its arrays (memory-mapped `.npy`).

Layout of a dataset directory (one step = one recorded RTAction and the frame it was computed from):

    index.json              DatasetIndex: image size, action spec, instructions, episodes, skipped
                            episodes with their reasons, per-dimension action statistics
    frames.npy              uint8 [N, H, W, 3] RGB, resized once at build time
    tokens.npy              uint8 [N, 11] action tokens (the labels), in the spec's order
    actions.npy             float32 [N, 11] the actions' values in the same order (for statistics)
    stamps.npy              int64 [N, 2] (action stamp, frame stamp) in nanoseconds
    embeddings.npy          float32 [I, 512] one text embedding per distinct instruction
    action_histograms.png   one histogram per action dimension

Episodes are contiguous runs of steps, in the order listed in the index. `index.json` is written
last, so a directory without it is an unfinished build.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rt_policy_node.data.action_stats import dimension_names
from rt_policy_node.policies.action_tokenizer import ActionDim, spec_from_json

FORMAT_VERSION = 1
INDEX_FILE = "index.json"
FRAMES_FILE = "frames.npy"
TOKENS_FILE = "tokens.npy"
ACTIONS_FILE = "actions.npy"
STAMPS_FILE = "stamps.npy"
EMBEDDINGS_FILE = "embeddings.npy"
HISTOGRAM_FILE = "action_histograms.png"
DATASET_FILES = (INDEX_FILE, FRAMES_FILE, TOKENS_FILE, ACTIONS_FILE, STAMPS_FILE, EMBEDDINGS_FILE, HISTOGRAM_FILE)


@dataclass
class EpisodeEntry:
    """One episode's run of steps `[start, start + length)` and where it came from."""

    name: str
    source: str
    instruction_id: int
    start: int
    length: int
    outcome: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Actions left out of this episode, counted by reason (e.g. no camera frame before them).
    dropped_steps: dict[str, int] = field(default_factory=dict)


@dataclass
class SkippedEpisode:
    """A bag the builder did not use, and why."""

    source: str
    reason: str


@dataclass
class DatasetIndex:
    """Everything about a dataset except its arrays."""

    image_size: tuple[int, int]
    action_spec: list[dict[str, Any]]
    rounding: str
    instructions: list[str]
    text_encoder: str
    episodes: list[EpisodeEntry]
    skipped: list[SkippedEpisode]
    action_stats: dict[str, dict[str, Any]]
    format_version: int = FORMAT_VERSION

    @property
    def num_steps(self) -> int:
        return sum(e.length for e in self.episodes)

    @property
    def spec(self) -> tuple[ActionDim, ...]:
        return spec_from_json(self.action_spec)

    def save(self, directory: str | Path) -> None:
        (Path(directory) / INDEX_FILE).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> DatasetIndex:
        path = Path(directory) / INDEX_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{directory} is not a dataset (no {INDEX_FILE}; was the build finished?)")
        raw = json.loads(path.read_text())
        if raw.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: format_version {raw.get('format_version')}, this code reads {FORMAT_VERSION}")
        raw["image_size"] = tuple(raw["image_size"])
        raw["episodes"] = [EpisodeEntry(**e) for e in raw["episodes"]]
        raw["skipped"] = [SkippedEpisode(**s) for s in raw["skipped"]]
        return cls(**raw)

    def describe(self) -> str:
        """A human-readable summary: sizes, instructions, skipped bags and action statistics."""
        lengths = [e.length for e in self.episodes]
        lines = [
            f"steps: {self.num_steps} in {len(self.episodes)} episodes "
            f"(length min {min(lengths, default=0)}, mean {np.mean(lengths) if lengths else 0:.1f}, "
            f"max {max(lengths, default=0)})",
            f"frames: {self.image_size[0]}x{self.image_size[1]} RGB uint8",
            f"labels: {sum(d['size'] for d in self.action_spec)} tokens per step, rounding {self.rounding!r}",
            f"instructions: {len(self.instructions)} distinct, embedded with {self.text_encoder}",
        ]
        per_instruction = np.bincount([e.instruction_id for e in self.episodes], minlength=len(self.instructions))
        lines += [
            f"  {count:5d} episodes  {text!r}" for text, count in zip(self.instructions, per_instruction, strict=True)
        ]
        dropped: dict[str, int] = {}
        for episode in self.episodes:
            for reason, count in episode.dropped_steps.items():
                dropped[reason] = dropped.get(reason, 0) + count
        lines += [f"dropped steps: {count} ({reason})" for reason, count in dropped.items()]
        lines.append(f"skipped episodes: {len(self.skipped)}")
        lines += [f"  {s.source}: {s.reason}" for s in self.skipped]
        lines.append("action statistics:")
        for name in dimension_names(self.spec):
            s = self.action_stats.get(name, {})
            if "class_counts" in s:
                lines.append(f"  {name:<22} class counts {s['class_counts']}")
            elif s:
                lines.append(
                    f"  {name:<22} mean {s['mean']:+.3f} std {s['std']:.3f} min {s['min']:+.3f} max {s['max']:+.3f}"
                    f" q01 {s['q01']:+.3f} q99 {s['q99']:+.3f} at bounds {100 * s['clipped_fraction']:.1f}%"
                )
        return "\n".join(lines)


class StoredDataset:
    """A built dataset opened for reading: the index plus memory-mapped arrays (shared by loader workers)."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self.index = DatasetIndex.load(self.directory)
        self.frames = self._load(FRAMES_FILE)
        self.tokens = self._load(TOKENS_FILE)
        self.stamps = self._load(STAMPS_FILE)
        self.embeddings = np.load(self.directory / EMBEDDINGS_FILE)
        if len(self.frames) != self.index.num_steps or len(self.tokens) != self.index.num_steps:
            raise ValueError(
                f"{self.directory}: index lists {self.index.num_steps} steps but frames.npy has {len(self.frames)}"
                f" and tokens.npy {len(self.tokens)}"
            )

    def _load(self, name: str) -> np.ndarray:
        return np.load(self.directory / name, mmap_mode="r")

    def __len__(self) -> int:
        return self.index.num_steps

    def __getstate__(self) -> dict[str, Path]:
        # Loader workers started by spawn reopen the files instead of receiving copies of the arrays.
        return {"directory": self.directory}

    def __setstate__(self, state: dict[str, Path]) -> None:
        self.__init__(state["directory"])

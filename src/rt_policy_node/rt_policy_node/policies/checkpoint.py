"""Reading policy checkpoint directories: every error names its file, and weights come from safetensors only.

Pickle, the format of `torch.save` (`pytorch_model.bin`, `*.pt`, `*.pth`, `*.ckpt`, `*.pkl`), runs code
while it loads, so a checkpoint from an untrusted source could take over the robot's computer: no policy
reads it. A directory whose weights are only pickles is refused with the command that converts them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError

if TYPE_CHECKING:
    import torch

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object from `path`; a missing, unreadable or malformed file raises ValueError naming the file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise ValueError(f"{path}: cannot be read ({err.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def refuse_pickles(directory: str | Path, convert: str) -> None:
    """Raises ValueError when `directory` holds pickle-format weights and no safetensors file, quoting `convert`
    (a command; `{file}` and `{directory}` in it are filled in) as the way to convert them."""
    directory = Path(directory)
    if not directory.is_dir() or any(directory.glob("*.safetensors")):
        return
    pickles = sorted(path.name for path in directory.iterdir() if path.name.endswith(PICKLE_SUFFIXES))
    if pickles:
        command = convert.format(file=directory / pickles[0], directory=directory)
        raise ValueError(
            f"{directory}: the weights are only in pickle format ({', '.join(pickles)}), which can run code when"
            f" it is loaded, so only safetensors are read. Convert them once, if you trust their source: {command}"
        )


def load_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of one safetensors file; a missing or malformed file raises ValueError naming it."""
    from safetensors.torch import load_file  # torch only where weights are read: the nodes import this package

    try:
        return load_file(path)
    except (OSError, SafetensorError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from None

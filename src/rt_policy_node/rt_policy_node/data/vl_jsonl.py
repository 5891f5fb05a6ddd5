"""Vision-language examples (`VLExample`: an image, a question about it, its short answer) and their format on
disk: a JSONL file of question/answer pairs about PNG images beside it.

    my_vl_data/
      vl.jsonl              one JSON object per line:
                            {"image": "images/000000.png", "question": "how many cubes are on the table?",
                             "answer": "3"}
      images/000000.png     8-bit PNG; RGBA, grey and palette images are converted to RGB on load

`image` is a path relative to the JSONL file's directory. Blank lines are skipped. A line that is not such
an object, or names an image that does not exist, is an error that gives the file and line number, raised
when the dataset is opened rather than halfway through training. Captions are pairs too, e.g. question
"what is on the table?", answer "a red cube and a blue cube".
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

FIELDS = ("image", "question", "answer")


@dataclass
class VLExample:
    """One vision-language pair: an image, a question about it and its short answer."""

    image: np.ndarray
    question: str
    answer: str


class VLJsonlDataset(Dataset):
    """The pairs of one JSONL file; images are read when an example is fetched."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.root = self.path.parent
        self.records: list[dict[str, str]] = []
        for number, line in enumerate(self.path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                self.records.append(self._parse(line, number))

    def _parse(self, line: str, number: int) -> dict[str, str]:
        where = f"{self.path} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: not JSON ({error.msg})") from None
        if not isinstance(record, dict) or not all(isinstance(record.get(k), str) and record[k] for k in FIELDS):
            raise ValueError(f"{where}: expected an object with non-empty strings {list(FIELDS)}")
        if not (self.root / record["image"]).is_file():
            raise FileNotFoundError(f"{where}: image {record['image']!r} not found under {self.root}")
        return {k: record[k] for k in FIELDS}

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> VLExample:
        record = self.records[index]
        with Image.open(self.root / record["image"]) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
        return VLExample(image=pixels, question=record["question"], answer=record["answer"])


def write_vl_jsonl(
    path: str | Path, frames: Iterable[tuple[np.ndarray, list[tuple[str, str]]]], image_dir: str = "images"
) -> Path:
    """Writes each (HxWx3 uint8 RGB image, [(question, answer), ...]) as one PNG under `image_dir` and one
    line per pair in the JSONL file `path`."""
    path = Path(path)
    (path.parent / image_dir).mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (image, pairs) in enumerate(frames):
        name = f"{image_dir}/{i:06d}.png"
        Image.fromarray(np.asarray(image, np.uint8)).save(path.parent / name)
        lines += [json.dumps({"image": name, "question": q, "answer": a}) for q, a in pairs]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path

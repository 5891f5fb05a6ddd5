"""Training examples, the robot ones read from an `rt-dataset` build, and the collate that turns them into one
batch for the backbone.

A robot example's answer is its action as codec ids (after a plan in chain-of-thought mode); a
vision-language example's (`data.vl_jsonl.VLExample`) answer is free text. Answers are appended to the prompt
as ids, followed by end-of-sequence; the loss sees only answer tokens (labels are -100 on the prompt and on
padding). `RobotSteps` serves the steps of a stored dataset as robot examples: one frame, its episode's
instruction and the recorded action's 11 tokens (RT-2 looks at one frame per step, so there are no windows).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from rt_policy_node.data.dataset import StoredDataset
from rt_policy_node.data.vl_jsonl import VLExample
from rt_policy_node.policies.rt2.backbones import BackboneIO
from rt_policy_node.policies.rt2.codec import ActionTextCodec
from rt_policy_node.policies.rt2.prompts import ACTION_MARKER, action_prompt, plan_text, question_prompt

IGNORE = -100


@dataclass
class RobotExample:
    """One recorded step: the camera frame, the episode's instruction and the action's 11 tokens (bins)."""

    image: np.ndarray
    instruction: str
    tokens: np.ndarray
    plan: str | None = None


class RobotSteps(Dataset):
    """Item i = step i of the stored dataset as a `RobotExample`."""

    def __init__(self, data: StoredDataset | str | Path, action_spec: list[dict[str, Any]] | None = None) -> None:
        self.data = data if isinstance(data, StoredDataset) else StoredDataset(data)
        index = self.data.index
        if action_spec is not None and index.action_spec != action_spec:
            raise ValueError(f"{self.data.directory}: the dataset's action spec differs from the model's")
        self.instruction_id = np.full(len(self.data), -1, np.int64)
        for episode in index.episodes:
            self.instruction_id[episode.start : episode.start + episode.length] = episode.instruction_id
        if (self.instruction_id < 0).any():
            raise ValueError(f"{self.data.directory}: steps outside every episode")

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> RobotExample:
        return RobotExample(
            image=np.array(self.data.frames[index]),
            instruction=self.data.index.instructions[self.instruction_id[index]],
            tokens=np.asarray(self.data.tokens[index], np.int64),
        )


class RT2Collator:
    """`collate_fn` for robot and vision-language examples.

    The batch holds the backbone's inputs (input_ids, attention_mask, pixel_values and the family's extras),
    `labels` aligned with input_ids (transformers' convention: the model shifts them), `action_mask` (True on
    the labels of action ids) and `is_robot` per example. Sequences are padded on the right.
    """

    def __init__(self, io: BackboneIO, codec: ActionTextCodec, plan: bool = False) -> None:
        self.io = io
        self.codec = codec
        self.plan = plan
        self.marker = io.text_ids(ACTION_MARKER)

    def answer(self, example: RobotExample | VLExample) -> tuple[list[int], list[bool]]:
        """The answer's ids (ending in end-of-sequence) and which of them are action ids."""
        if isinstance(example, VLExample):
            ids = self.io.text_ids(self.io.answer_separator + example.answer.strip())
            return [*ids, self.io.eos_id], [False] * (len(ids) + 1)
        action = self.codec.encode(np.asarray(example.tokens, np.int64).reshape(-1)).tolist()
        prefix: list[int] = []
        if self.plan:
            if not example.plan:
                raise ValueError(f"chain-of-thought training needs a plan for {example.instruction!r}")
            prefix = self.io.text_ids(self.io.answer_separator + plan_text(example.plan)) + self.marker
        flags = [False] * len(prefix) + [True] * len(action) + [False]
        return [*prefix, *action, self.io.eos_id], flags

    def prompt(self, example: RobotExample | VLExample) -> str:
        if isinstance(example, RobotExample):
            return action_prompt(example.instruction)
        if isinstance(example, VLExample):
            return question_prompt(example.question)
        raise TypeError(f"expected RobotExample or VLExample, got {type(example).__name__}")

    def __call__(self, examples: list[RobotExample | VLExample]) -> dict[str, torch.Tensor]:
        if not examples:
            raise ValueError("cannot collate an empty batch")
        prompts = [self.io.encode_prompt(e.image, self.prompt(e)) for e in examples]
        answers = [self.answer(e) for e in examples]
        length = max(p["input_ids"].shape[1] + len(ids) for p, (ids, _) in zip(prompts, answers, strict=True))
        columns: dict[str, list[torch.Tensor]] = {}
        for inputs, (ids, flags) in zip(prompts, answers, strict=True):
            prompt_ids = inputs["input_ids"][0]
            n_prompt, n_answer = len(prompt_ids), len(ids)
            pad = length - n_prompt - n_answer
            sequences = {
                "input_ids": torch.cat([prompt_ids, torch.tensor(ids), prompt_ids.new_full((pad,), self.io.pad_id)]),
                "labels": torch.tensor([IGNORE] * n_prompt + ids + [IGNORE] * pad),
                "action_mask": torch.tensor([False] * n_prompt + flags + [False] * pad),
            }
            for key, (answer_value, pad_value) in self.io.sequence_keys.items():
                row = inputs[key][0]
                sequences[key] = torch.cat(
                    [row, row.new_full((n_answer,), answer_value), row.new_full((pad,), pad_value)]
                )
            for key, value in sequences.items():
                columns.setdefault(key, []).append(value[None])
            for key, value in inputs.items():
                if key not in sequences:
                    columns.setdefault(key, []).append(value)
        batch = {key: _cat_padded(values) for key, values in columns.items()}
        batch["is_robot"] = torch.tensor([isinstance(e, RobotExample) for e in examples])
        return batch


def _cat_padded(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Concatenates along dim 0, zero-padding the other dims to the largest (e.g. Idefics3's image count)."""
    shape = [max(t.shape[d] for t in tensors) for d in range(1, tensors[0].dim())]
    padded = []
    for t in tensors:
        widths = [w for d in reversed(range(1, t.dim())) for w in (0, shape[d - 1] - t.shape[d])]
        padded.append(F.pad(t, widths) if any(widths) else t)
    return torch.cat(padded)

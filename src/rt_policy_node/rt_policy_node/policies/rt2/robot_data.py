"""Robot steps of a dataset built by `rt-dataset`, as RT-2 examples: one frame, its episode's instruction
and the recorded action's 11 tokens. RT-2 looks at one frame per step, so there are no windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from rt_policy_node.data.dataset import StoredDataset
from rt_policy_node.policies.rt2.processing import RobotExample


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

"""Which camera frame each action was computed from: the newest frame stamped at or before it."""

from __future__ import annotations

from typing import Any

import numpy as np

NO_FRAME = np.iinfo(np.int64).min


class NewestFrameSelector:
    """Streams frames in any order, keeping for each action the newest frame stamped at or before it.

    One pass over a bag's camera topic, holding only the chosen frames: never a later frame (a label
    must not see the future). Stamps are integer nanoseconds, so "at" is exact; of two frames with
    the same stamp the first offered wins.
    """

    def __init__(self, action_stamps: np.ndarray) -> None:
        self.action_stamps = np.asarray(action_stamps, np.int64)
        if self.action_stamps.size > 1 and np.any(np.diff(self.action_stamps) < 0):
            raise ValueError("action stamps must be sorted")
        self.frame_stamps = np.full(len(self.action_stamps), NO_FRAME, np.int64)
        self.frames: list[Any] = [None] * len(self.action_stamps)

    def offer(self, stamp: int, frame: Any) -> None:
        """Considers one frame stamped `stamp` (ns) for every action at or after it."""
        first = int(np.searchsorted(self.action_stamps, stamp, side="left"))
        newer = first + np.flatnonzero(self.frame_stamps[first:] < stamp)
        self.frame_stamps[newer] = stamp
        for i in newer:
            self.frames[i] = frame

    @property
    def has_frame(self) -> np.ndarray:
        """`[num_actions]` bool: whether any frame at or before the action was offered."""
        return self.frame_stamps != NO_FRAME

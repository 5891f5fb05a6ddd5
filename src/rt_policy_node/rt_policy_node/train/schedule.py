"""Learning-rate schedule: linear warmup, then cosine decay to a floor."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float) -> float:
    """lr multiplier at optimizer step `step`: rises linearly over `warmup_steps`, then follows half a
    cosine from 1 down to `min_ratio` at `total_steps`, and stays there."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_schedule(warmup_steps: int, total_steps: int, min_ratio: float = 0.1) -> Callable[[int], float]:
    """The multiplier function for LambdaLR. A partial, so a scheduler's saved state holds only its step:
    a resumed run follows the schedule of its own settings (e.g. a longer `total_steps`)."""
    if total_steps < 1 or warmup_steps < 0 or not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"bad schedule: warmup {warmup_steps}, total {total_steps}, min_ratio {min_ratio}")
    return functools.partial(warmup_cosine, warmup_steps=warmup_steps, total_steps=total_steps, min_ratio=min_ratio)

"""Command limits applied by rt_action_executor: clamp magnitudes, rates and the workspace. ROS-free."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pinocchio as pin


def clamp_norm(vector: np.ndarray, limit: float) -> np.ndarray:
    """`vector` scaled down (direction kept) so its norm is at most `limit`."""
    vector = np.asarray(vector, float)
    norm = float(np.linalg.norm(vector))
    return vector * (limit / norm) if norm > limit else vector


def rate_limit(target: np.ndarray, previous: np.ndarray, max_change: float) -> np.ndarray:
    """Moves from `previous` towards `target` by at most `max_change` (an acceleration limit per tick)."""
    previous = np.asarray(previous, float)
    return previous + clamp_norm(np.asarray(target, float) - previous, max_change)


def rotation_step(rpy: np.ndarray, max_angle: float) -> np.ndarray:
    """Roll, pitch, yaw -> a rotation matrix whose angle is clamped to `max_angle` (axis kept)."""
    rotation = pin.rpy.rpyToMatrix(*np.asarray(rpy, float))
    return pin.exp3(clamp_norm(pin.log3(rotation), max_angle))


def clamp_to_box(point: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(point, float), low, high)


def box_excursion(point: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """How far `point` lies outside the box [low, high] (0 inside)."""
    point = np.asarray(point, float)
    return float(np.linalg.norm(np.maximum(low - point, 0.0) + np.maximum(point - high, 0.0)))


def keep_inside_box(
    position: np.ndarray, velocity: np.ndarray, low: np.ndarray, high: np.ndarray, horizon: float
) -> np.ndarray:
    """`velocity` with each component cut so that `horizon` seconds of it keep `position` inside the box
    [low, high]; outside the box, a component may only lead back in."""
    position = np.asarray(position, float)
    upper = np.maximum((np.asarray(high) - position) / horizon, 0.0)
    lower = np.minimum((np.asarray(low) - position) / horizon, 0.0)
    return np.clip(np.asarray(velocity, float), lower, upper)


def joint_step_fraction(delta: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """The largest s in [0, 1] with low <= s * delta <= high for every joint (low <= 0 <= high).

    One factor for every joint keeps the end effector on its path instead of bending it. A non-finite step
    or bound is no move at all.
    """
    delta, low, high = (np.asarray(v, float) for v in (delta, low, high))
    if not (np.isfinite(delta).all() and np.isfinite(low).all() and np.isfinite(high).all()):
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        bounds = np.where(delta > 0, high / delta, np.where(delta < 0, low / delta, np.inf))
    return float(np.clip(bounds.min(initial=1.0), 0.0, 1.0))


def largest_fraction(holds: Callable[[float], bool], upper: float, steps: int) -> float:
    """The largest s in [0, upper] for which `holds(s)`, by bisection in `steps` halvings; `holds(0)` is taken
    to be true. Only fractions that were checked are returned, so whatever `holds` tests holds exactly on it."""
    if upper <= 0.0 or holds(upper):
        return max(upper, 0.0)
    low, high = 0.0, upper
    for _ in range(steps):
        middle = (low + high) / 2
        if holds(middle):
            low = middle
        else:
            high = middle
    return low

"""Command limits applied by rt_action_executor: clamp magnitudes, rates and the workspace. ROS-free."""

from __future__ import annotations

import math

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


def keep_inside_box(position: np.ndarray, velocity: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Zeroes each velocity component that would carry `position` further out of the box [low, high]."""
    velocity = np.array(velocity, float)
    velocity[(position <= low) & (velocity < 0)] = 0.0
    velocity[(position >= high) & (velocity > 0)] = 0.0
    return velocity


def limit_joint_step(q_from: np.ndarray, q_to: np.ndarray, max_step: np.ndarray) -> np.ndarray:
    """Shortens the move `q_from -> q_to` uniformly so no joint moves more than its `max_step`.

    Scaling every joint by the same factor keeps the end effector on its path instead of bending it. A
    non-finite target or limit is no move at all.
    """
    delta = np.asarray(q_to, float) - np.asarray(q_from, float)
    ratios = np.abs(delta) / np.maximum(np.asarray(max_step, float), 1e-12)
    worst = float(ratios.max(initial=0.0))
    if not math.isfinite(worst):
        return np.asarray(q_from, float)
    return q_from + delta / worst if worst > 1.0 else np.asarray(q_to, float)

"""Joint trajectory following the way ros2_controllers' joint_trajectory_controller does it.

A new trajectory replaces the old one and starts from the current set point at its start time (the
message stamp, or its arrival when the stamp is zero); between points the set point is interpolated
linearly when the points carry positions only and with cubic Hermite splines when they also carry
velocities; after the last point it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class JointTrajectory:
    """trajectory_msgs/JointTrajectory without ROS: names, times from start (s), positions [N, J]."""

    joint_names: Sequence[str]
    times_from_start: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray | None = None
    start_time: float | None = None  # None or 0: start when received


class TrajectoryFollower:
    """Set points for a fixed set of joints, sampled from the latest trajectory at any time."""

    def __init__(self, joint_names: Sequence[str], positions: np.ndarray) -> None:
        self.joint_names = tuple(joint_names)
        self.hold(positions)

    def hold(self, positions: np.ndarray) -> None:
        """Forgets any trajectory and holds `positions`."""
        positions = np.asarray(positions, np.float64).reshape(len(self.joint_names))
        self._times = np.zeros(1)
        self._positions = positions[None].copy()
        self._velocities: np.ndarray | None = None

    def follow(self, trajectory: JointTrajectory, now: float) -> None:
        """Replaces the current motion; raises ValueError (and keeps the old motion) if `trajectory` is malformed."""
        names = list(trajectory.joint_names)
        unknown = sorted(set(names) - set(self.joint_names))
        if unknown or len(set(names)) != len(names):
            raise ValueError(f"trajectory joints {names} are not a subset of {list(self.joint_names)}")
        times = np.asarray(trajectory.times_from_start, np.float64).reshape(-1)
        positions = np.asarray(trajectory.positions, np.float64)
        if len(times) == 0 or positions.shape != (len(times), len(names)):
            raise ValueError(f"trajectory needs >= 1 point with {len(names)} positions each, got {positions.shape}")
        if np.any(np.diff(times) <= 0) or times[0] < 0:
            raise ValueError("trajectory times_from_start must be non-negative and strictly increasing")
        velocities = trajectory.velocities
        if velocities is not None:
            velocities = np.asarray(velocities, np.float64)
            if velocities.shape != positions.shape:
                raise ValueError(f"velocities must match positions {positions.shape}, got {velocities.shape}")
        if not np.isfinite(positions).all() or (velocities is not None and not np.isfinite(velocities).all()):
            raise ValueError("trajectory contains NaN or infinite values")

        start = trajectory.start_time or now
        current, current_velocity = self.sample(start)
        columns = [names.index(j) if j in names else None for j in self.joint_names]
        full_positions = np.stack(
            [positions[:, c] if c is not None else np.full(len(times), current[i]) for i, c in enumerate(columns)],
            axis=1,
        )
        knot_times = start + times
        if times[0] > 0:
            knot_times = np.concatenate([[start], knot_times])
            full_positions = np.concatenate([current[None], full_positions])
        self._times, self._positions = knot_times, full_positions
        self._velocities = None
        if velocities is not None:
            full_velocities = np.stack(
                [velocities[:, c] if c is not None else np.zeros(len(times)) for c in columns], axis=1
            )
            if times[0] > 0:
                full_velocities = np.concatenate([current_velocity[None], full_velocities])
            self._velocities = full_velocities

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(positions, velocities) commanded at time `t`."""
        times, positions = self._times, self._positions
        if len(times) == 1 or t < times[0]:
            return positions[0].copy(), np.zeros_like(positions[0])
        if t >= times[-1]:
            return positions[-1].copy(), np.zeros_like(positions[-1])
        return self._segment(int(np.searchsorted(times, t, side="right")) - 1, t)

    def _segment(self, k: int, t: float) -> tuple[np.ndarray, np.ndarray]:
        t0, t1 = self._times[k], self._times[k + 1]
        p0, p1 = self._positions[k], self._positions[k + 1]
        h = t1 - t0
        s = (t - t0) / h
        if self._velocities is None:
            return p0 + s * (p1 - p0), (p1 - p0) / h
        v0, v1 = self._velocities[k] * h, self._velocities[k + 1] * h
        h00, h10, h01, h11 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
        d00, d10, d01, d11 = 6 * s**2 - 6 * s, 3 * s**2 - 4 * s + 1, -6 * s**2 + 6 * s, 3 * s**2 - 2 * s
        position = h00 * p0 + h10 * v0 + h01 * p1 + h11 * v1
        velocity = (d00 * p0 + d10 * v0 + d01 * p1 + d11 * v1) / h
        return position, velocity

    @property
    def end_time(self) -> float:
        return float(self._times[-1])

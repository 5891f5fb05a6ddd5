"""A robot profile: everything rt_action_executor needs to know about one robot, loaded from YAML.

Joints and frames, controller topics, the scale from RT-1's normalised actions to metres and radians
per step, the control period, and the velocity, acceleration and workspace limits every command is
clamped to. ROS-free: `package://` URIs are resolved by the caller-supplied `find_package_share`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml


@dataclass(frozen=True)
class Topics:
    """Controller topics, relative so a namespace or remapping applies."""

    cmd_vel: str = "cmd_vel"
    arm_trajectory: str = "arm_controller/joint_trajectory"
    gripper_trajectory: str = "gripper_controller/joint_trajectory"
    servo_twist: str = "servo_node/delta_twist_cmds"


@dataclass(frozen=True)
class Scale:
    """Physical size of one normalised action unit per step."""

    world_vector: float = 0.05  # metres
    rotation_delta: float = 1.0  # radians per radian
    base_displacement: float = 0.1  # metres
    base_rotation: float = 1.0  # radians per radian


@dataclass(frozen=True)
class Limits:
    """Hard limits, held by every command sent (robot/motion.py); a command beyond one is clamped, never rejected."""

    ee_linear_velocity: float = 0.25  # m/s
    ee_angular_velocity: float = 1.0  # rad/s
    joint_velocity: float = 1.0  # rad/s (or m/s), also capped by the URDF's limits
    joint_acceleration: float = 4.0  # rad/s^2
    base_linear_velocity: float = 0.5  # m/s
    base_angular_velocity: float = 1.0  # rad/s
    base_linear_acceleration: float = 1.0  # m/s^2
    base_angular_acceleration: float = 2.0  # rad/s^2
    workspace_min: tuple[float, float, float] = (-1.0, -1.0, 0.0)  # end-effector box in the base frame, m
    workspace_max: tuple[float, float, float] = (1.0, 1.0, 2.0)


@dataclass(frozen=True)
class IKSettings:
    """Damped least squares over the reduced arm model."""

    iterations: int = 100
    tolerance: float = 1e-4  # norm of the 6-D pose error (m, rad)
    damping: float = 1e-3
    max_step: float = 0.05  # pose error (m, rad) corrected per iteration at most
    # A comfortable arm posture (arm_joints order) the redundancy drifts towards; empty: none.
    rest_posture: tuple[float, ...] = ()
    rest_gain: float = 0.1


@dataclass(frozen=True)
class RobotProfile:
    name: str
    urdf: Path
    arm_joints: tuple[str, ...]
    gripper_joints: tuple[str, ...]
    base_frame: str = "base_link"
    ee_frame: str = "ee_link"
    gripper_open: float = 0.04  # joint position at gripper_closedness -1
    gripper_closed: float = 0.0  # joint position at gripper_closedness +1
    control_period_s: float = 1.0 / 3.0
    topics: Topics = field(default_factory=Topics)
    scale: Scale = field(default_factory=Scale)
    limits: Limits = field(default_factory=Limits)
    ik: IKSettings = field(default_factory=IKSettings)

    def gripper_position(self, closedness: float) -> float:
        """RT-1's gripper_closedness in [-1, 1] (clamped) -> the gripper joint position."""
        t = (float(np.clip(closedness, -1.0, 1.0)) + 1.0) / 2.0
        return self.gripper_open + t * (self.gripper_closed - self.gripper_open)


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """A dataclass from a YAML mapping; unknown keys are an error, not silently ignored."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {data!r}")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; expected some of {sorted(known)}")
    values = {}
    for key, value in data.items():
        values[key] = tuple(value) if isinstance(value, list) else value
    return cls(**values)


def resolve_package_uri(uri: str | Path, find_package_share: Callable[[str], str] | None, where: str = "") -> Path:
    """`package://pkg/rel/path` -> that path in pkg's share directory (found by `find_package_share`); a plain path
    is returned as it is."""
    uri = str(uri)
    if not uri.startswith("package://"):
        return Path(uri)
    if find_package_share is None:
        raise ValueError(f"{where or uri}: cannot resolve {uri} without a package lookup")
    package, _, rest = uri.removeprefix("package://").partition("/")
    return Path(find_package_share(package)) / rest


def load_profile(path: str | Path, find_package_share: Callable[[str], str] | None = None) -> RobotProfile:
    """Reads a profile YAML (a path or `package://` URI); `urdf` is a path relative to the profile, absolute, or
    `package://pkg/...`."""
    path = resolve_package_uri(path, find_package_share)
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a robot profile must be a mapping")
    data = dict(data)
    nested = {"topics": Topics, "scale": Scale, "limits": Limits, "ik": IKSettings}
    for key, cls in nested.items():
        data[key] = _build(cls, data.get(key, {}), f"{path}: {key}")
    urdf = str(data.get("urdf", ""))
    if urdf.startswith("package://"):
        data["urdf"] = resolve_package_uri(urdf, find_package_share, str(path))
    else:
        data["urdf"] = path.parent / urdf
    profile = _build(RobotProfile, data, str(path))
    _validate(profile, path)
    return profile


def _validate(profile: RobotProfile, path: Path) -> None:
    if not profile.urdf.is_file():
        raise ValueError(f"{path}: URDF {profile.urdf} does not exist")
    if not profile.arm_joints:
        raise ValueError(f"{path}: arm_joints is empty")
    if profile.control_period_s <= 0:
        raise ValueError(f"{path}: control_period_s must be > 0")
    for group in (profile.scale, profile.limits):
        for f in fields(group):
            value = getattr(group, f.name)
            if not f.name.startswith("workspace") and not value > 0:
                raise ValueError(f"{path}: {type(group).__name__.lower()}.{f.name} must be > 0, got {value}")
    if profile.ik.rest_posture and len(profile.ik.rest_posture) != len(profile.arm_joints):
        raise ValueError(f"{path}: ik.rest_posture needs one position per arm joint ({len(profile.arm_joints)})")
    low, high = np.asarray(profile.limits.workspace_min), np.asarray(profile.limits.workspace_max)
    if low.shape != (3,) or high.shape != (3,) or not (low < high).all():
        raise ValueError(f"{path}: limits.workspace_min must be 3 numbers each below workspace_max")

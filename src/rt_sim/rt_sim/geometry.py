"""Small planar and rotation helpers shared by tasks and the scripted expert (numpy only)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def wrap_angle(angle: float) -> float:
    """Angle in [-pi, pi)."""
    return (angle + math.pi) % (2 * math.pi) - math.pi


def yaw_of_quaternion(quat_wxyz: Sequence[float]) -> float:
    """Heading (rotation about z) of a wxyz quaternion."""
    w, x, y, z = quat_wxyz
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def world_to_base(base_pose: Sequence[float], point: Sequence[float]) -> np.ndarray:
    """A point in odom (2-D or 3-D) expressed in base_link; z is unchanged (base_link is on the floor)."""
    x, y, yaw = base_pose
    p = np.zeros(3)
    p[: len(point)] = point
    p[0] -= x
    p[1] -= y
    return rot_z(-yaw) @ p


def rotation_vector(rotation: np.ndarray) -> np.ndarray:
    """Axis * angle of a 3x3 rotation matrix (the log map), robust near 0 and pi."""
    cos = np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0)
    angle = math.acos(cos)
    axis = np.array([rotation[2, 1] - rotation[1, 2], rotation[0, 2] - rotation[2, 0], rotation[1, 0] - rotation[0, 1]])
    if angle < 1e-6:
        return axis / 2.0
    if math.pi - angle < 1e-4:
        symmetric = (rotation + np.eye(3)) / 2.0
        axis = np.sqrt(np.clip(np.diag(symmetric), 0.0, None))
        signs = np.sign(symmetric[np.argmax(axis)])
        return angle * axis * np.where(signs == 0, 1.0, signs)
    return angle * axis / (2.0 * math.sin(angle))


def matrix_from_rotation_vector(vector: np.ndarray) -> np.ndarray:
    """Rodrigues: axis * angle -> 3x3 rotation matrix (the exp map)."""
    angle = float(np.linalg.norm(vector))
    if angle < 1e-12:
        return np.eye(3)
    x, y, z = np.asarray(vector, np.float64) / angle
    k = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * k @ k


def rpy_from_matrix(rotation: np.ndarray) -> np.ndarray:
    """(roll, pitch, yaw) with rotation = Rz(yaw) @ Ry(pitch) @ Rx(roll), the ROS/URDF convention."""
    pitch = math.asin(float(np.clip(-rotation[2, 0], -1.0, 1.0)))
    roll = math.atan2(rotation[2, 1], rotation[2, 2])
    yaw = math.atan2(rotation[1, 0], rotation[0, 0])
    return np.array([roll, pitch, yaw])

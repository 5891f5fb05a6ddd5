"""rt_msgs/RTAction <-> `policies.policy.Action`, and ROS time <-> float seconds."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Time

from rt_msgs.msg import RTAction
from rt_policy_node.policies.policy import Action, Mode


def stamp_to_seconds(stamp: Time) -> float:
    """builtin_interfaces/Time -> float seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(seconds: float) -> Time:
    """Float seconds -> builtin_interfaces/Time (rounded to the nanosecond)."""
    nanoseconds = round(seconds * 1e9)
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def action_to_msg(action: Action, stamp: Time | None = None, instruction: str = "", frame_id: str = "") -> RTAction:
    """Packs one action; `stamp` should be the camera image's stamp the action was computed from."""
    msg = RTAction()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.world_vector = np.asarray(action.world_vector, np.float32).reshape(3)
    msg.rotation_delta = np.asarray(action.rotation_delta, np.float32).reshape(3)
    msg.gripper_closedness = float(action.gripper_closedness)
    msg.base_displacement = np.asarray(action.base_displacement, np.float32).reshape(2)
    msg.base_rotation = float(action.base_rotation)
    msg.mode = int(action.mode)
    if action.tokens is not None:
        msg.tokens = np.asarray(action.tokens, np.uint8).reshape(-1)
    msg.instruction = instruction
    msg.inference_ms = float(action.inference_ms)
    return msg


def msg_to_action(msg: RTAction) -> Action:
    """Unpacks one RTAction; an unknown mode value raises ValueError (the caller rejects the action)."""
    try:
        mode = Mode(msg.mode)
    except ValueError:
        raise ValueError(f"RTAction.mode must be 0, 1 or 2, got {msg.mode}") from None
    return Action(
        world_vector=np.array(msg.world_vector, np.float32),
        rotation_delta=np.array(msg.rotation_delta, np.float32),
        gripper_closedness=float(msg.gripper_closedness),
        base_displacement=np.array(msg.base_displacement, np.float32),
        base_rotation=float(msg.base_rotation),
        mode=mode,
        tokens=np.array(msg.tokens, np.int64) if len(msg.tokens) else None,
        inference_ms=float(msg.inference_ms),
    )

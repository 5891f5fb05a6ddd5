"""What a teleoperator is commanding: latched mode and gripper, plus six stick axes -> one RT-1 action per tick.

Shared by the joystick and keyboard teleop nodes; ROS-free. In ARM mode the axes x, y, z, roll, pitch,
yaw drive world_vector and rotation_delta; in BASE mode x, y and yaw drive base_displacement and
base_rotation. Terminate sends one TERMINATE action, then nothing until a mode is chosen again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rt_policy_node.policies.policy import Action, Mode

AXES = ("x", "y", "z", "roll", "pitch", "yaw")
EVENTS = ("arm_mode", "base_mode", "terminate", "gripper_open", "gripper_close")


@dataclass(frozen=True)
class TeleopScales:
    """Action at full deflection of an axis."""

    world_vector: float = 1.0  # normalised, like the policy's
    rotation_delta: float = 0.25  # rad per step
    base_displacement: float = 1.0  # normalised
    base_rotation: float = 0.4  # rad per step


class TeleopState:
    """Turns button events and axis values into the action to publish this tick (or None: publish nothing)."""

    def __init__(self, scales: TeleopScales) -> None:
        self.scales = scales
        self.mode: Mode | None = Mode.ARM
        self.gripper = -1.0
        self._terminate = False

    def press(self, event: str) -> None:
        """Handles one button or key event from EVENTS."""
        if event == "arm_mode":
            self.mode = Mode.ARM
        elif event == "base_mode":
            self.mode = Mode.BASE
        elif event == "terminate":
            self._terminate = self.mode is not None
        elif event == "gripper_open":
            self.gripper = -1.0
        elif event == "gripper_close":
            self.gripper = 1.0
        else:
            raise ValueError(f"unknown teleop event {event!r}; expected one of {EVENTS}")

    def action(self, axes: dict[str, float]) -> Action | None:
        """The action for this tick from axis values in [-1, 1] (missing axes read 0)."""
        if self._terminate:
            self._terminate = False
            self.mode = None
            return Action(mode=Mode.TERMINATE, gripper_closedness=self.gripper)
        if self.mode is None:
            return None
        value = {name: float(np.clip(axes.get(name, 0.0), -1.0, 1.0)) for name in AXES}
        s = self.scales
        if self.mode == Mode.BASE:
            return Action(
                base_displacement=np.array([value["x"], value["y"]], np.float32) * s.base_displacement,
                base_rotation=value["yaw"] * s.base_rotation,
                gripper_closedness=self.gripper,
                mode=Mode.BASE,
            )
        return Action(
            world_vector=np.array([value["x"], value["y"], value["z"]], np.float32) * s.world_vector,
            rotation_delta=np.array([value["roll"], value["pitch"], value["yaw"]], np.float32) * s.rotation_delta,
            gripper_closedness=self.gripper,
            mode=Mode.ARM,
        )

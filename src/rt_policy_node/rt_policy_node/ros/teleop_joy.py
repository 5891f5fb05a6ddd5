"""rt_teleop_joy: sensor_msgs/Joy -> rt_msgs/RTAction at the policy rate, for demonstrations on a real robot.

Hold the enable (dead-man) button to send actions; buttons latch the mode (arm / base), open or close
the gripper, and terminate the episode. Mappings are parameters (config/teleop.yaml).
"""

from __future__ import annotations

from sensor_msgs.msg import Joy

from rt_policy_node.parameters import Parameter
from rt_policy_node.ros.node_main import run_node
from rt_policy_node.ros.teleop_node import TeleopNode, teleop_parameters
from rt_policy_node.teleop_state import TeleopScales

# Xbox-style pad as the Linux joy driver numbers it.
DEFAULT_BUTTONS = {"arm_mode": 0, "base_mode": 1, "terminate": 7, "gripper_open": 2, "gripper_close": 3}
DEFAULT_AXES = {"x": 1, "y": 0, "z": 4, "roll": -1, "pitch": -1, "yaw": 3}


def index_parameters(group: str, defaults: dict[str, int], description: str) -> tuple[Parameter, ...]:
    """One read-only `group.name` parameter per entry of `defaults`: a Joy button or axis index, -1 for none."""
    return tuple(
        Parameter(f"{group}.{name}", index, description.format(name), low=-1, high=127, read_only=True)
        for name, index in defaults.items()
    )


PARAMETERS = (
    *teleop_parameters(TeleopScales()),
    Parameter("enable_button", 4, "Dead-man button index (-1: always on)", low=-1, high=127, read_only=True),
    Parameter("joy_timeout_s", 0.5, "No Joy message for this long: send nothing", low=0.01, high=10.0, read_only=True),
    Parameter("deadzone", 0.1, "Axis values below this read 0", low=0.0, high=0.99, read_only=True),
    *index_parameters("buttons", DEFAULT_BUTTONS, "Button for {} (-1: none)"),
    *index_parameters("axes", DEFAULT_AXES, "Joy axis driving {} (-1: none)"),
)


class JoyTeleop(TeleopNode):
    def __init__(self) -> None:
        super().__init__("rt_teleop_joy", PARAMETERS)
        p = self.values
        self.enable_button, self.timeout_s, self.deadzone = p["enable_button"], p["joy_timeout_s"], p["deadzone"]
        self.buttons = {name: p[f"buttons.{name}"] for name in DEFAULT_BUTTONS}
        self.axes = {name: p[f"axes.{name}"] for name in DEFAULT_AXES}
        self.joy: Joy | None = None
        self.joy_ns = 0
        self.create_subscription(Joy, "joy", self.on_joy, 10)

    def on_joy(self, msg: Joy) -> None:
        previous = self.joy.buttons if self.joy is not None else []
        for event, index in self.buttons.items():
            if self._pressed(msg.buttons, index) and not self._pressed(previous, index):
                self.state.press(event)
        self.joy, self.joy_ns = msg, self.get_clock().now().nanoseconds

    @staticmethod
    def _pressed(buttons, index: int) -> bool:
        return 0 <= index < len(buttons) and buttons[index] != 0

    def read_axes(self) -> dict[str, float] | None:
        if self.joy is None or (self.get_clock().now().nanoseconds - self.joy_ns) * 1e-9 > self.timeout_s:
            return None
        if self.enable_button >= 0 and not self._pressed(self.joy.buttons, self.enable_button):
            return None
        values = {}
        for name, index in self.axes.items():
            value = self.joy.axes[index] if 0 <= index < len(self.joy.axes) else 0.0
            values[name] = value if abs(value) >= self.deadzone else 0.0
        return values


def main(args: list[str] | None = None) -> int:
    return run_node(JoyTeleop, args)

"""rt_teleop_keyboard: keys in a terminal -> rt_msgs/RTAction at the policy rate.

Each axis has a plus and a minus key (e.g. "ws" for x); a key counts as held for `key_hold_s` after it
was last seen, which the terminal's auto-repeat keeps refreshing. Other keys latch the mode, open or
close the gripper and terminate the episode. Bindings are parameters (config/teleop.yaml).
"""

from __future__ import annotations

import sys
import termios
import threading
import time
import tty
from collections import deque

from rt_policy_node.parameters import Parameter
from rt_policy_node.ros.node_main import run_node
from rt_policy_node.ros.teleop_node import TeleopNode, teleop_parameters
from rt_policy_node.teleop_state import AXES, EVENTS, TeleopScales

DEFAULT_KEYS = {"arm_mode": "1", "base_mode": "2", "terminate": "t", "gripper_open": "o", "gripper_close": "c"}
DEFAULT_AXIS_KEYS = {"x": "ws", "y": "ad", "z": "rf", "roll": "uj", "pitch": "ik", "yaw": "qe"}
# A held key is full deflection, all or nothing: gentler scales than a stick's (config/teleop.yaml's).
KEYBOARD_SCALES = TeleopScales(world_vector=0.5, rotation_delta=0.2, base_displacement=0.5, base_rotation=0.3)

PARAMETERS = (
    *teleop_parameters(KEYBOARD_SCALES),
    Parameter("key_hold_s", 0.6, "A key counts as held this long after it is seen", low=0.05, high=5.0, read_only=True),
    *(Parameter(f"keys.{event}", DEFAULT_KEYS[event], f"Key for {event}", read_only=True) for event in EVENTS),
    *(
        Parameter(f"axes.{name}", DEFAULT_AXIS_KEYS[name], f"Plus and minus keys of {name}", read_only=True)
        for name in AXES
    ),
)


class KeyboardTeleop(TeleopNode):
    def __init__(self) -> None:
        super().__init__("rt_teleop_keyboard", PARAMETERS)
        self._terminal: list | None = None  # the terminal's settings to restore; none until they are changed
        p = self.values
        self.hold_s = p["key_hold_s"]
        self.event_keys = {p[f"keys.{event}"]: event for event in EVENTS}
        self.axis_keys = {name: p[f"axes.{name}"] for name in AXES}
        self._check_bindings()
        if not sys.stdin.isatty():
            raise RuntimeError("rt_teleop_keyboard reads keys from a terminal; stdin is not one")
        self.seen: dict[str, float] = {}
        self.events: deque[str] = deque()
        self._terminal = termios.tcgetattr(sys.stdin)
        tty.setcbreak(sys.stdin)
        threading.Thread(target=self._read_keys, daemon=True).start()
        print(self.help(), flush=True)

    def _check_bindings(self) -> None:
        keys = list(self.event_keys)
        for name, pair in self.axis_keys.items():
            if len(pair) != 2:
                raise ValueError(f"axes.{name} must be two keys (plus, minus), got {pair!r}")
            keys += list(pair)
        if any(len(key) != 1 for key in self.event_keys) or len(set(keys)) != len(keys):
            raise ValueError(f"key bindings must be single, distinct characters: {keys}")

    def help(self) -> str:
        axes = ", ".join(f"{name} {pair[0]}/{pair[1]}" for name, pair in self.axis_keys.items())
        events = ", ".join(f"{event} {key}" for key, event in self.event_keys.items())
        return f"rt_teleop_keyboard: axes (+/-): {axes}; {events}; Ctrl-C quits."

    def _read_keys(self) -> None:
        while True:
            key = sys.stdin.read(1)
            if not key:
                return
            if key in self.event_keys:
                self.events.append(self.event_keys[key])
            else:
                self.seen[key] = time.monotonic()

    def _held(self, key: str, now: float) -> bool:
        return now - self.seen.get(key, -float("inf")) < self.hold_s

    def read_axes(self) -> dict[str, float]:
        while self.events:
            self.state.press(self.events.popleft())
        now = time.monotonic()
        return {
            name: float(self._held(plus, now)) - float(self._held(minus, now))
            for name, (plus, minus) in self.axis_keys.items()
        }

    def destroy_node(self) -> None:
        if self._terminal is not None:
            termios.tcsetattr(sys.stdin, termios.TCSADRAIN, self._terminal)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(KeyboardTeleop, args)

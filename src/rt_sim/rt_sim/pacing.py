"""How sim time advances against the wall clock: real-time pacing, or lockstep with the controller.

In lockstep the simulation runs as fast as the CPU allows while RTActions flow, pausing one control period after
each action until the next action and the executor's commands for it have arrived, so neither slow inference nor
a slow machine changes what happens in sim time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from rt_policy_node.policies.policy import Mode

# In real-time pacing, a lag beyond this (wall s) is dropped rather than caught up in a burst.
MAX_PACING_LAG_S = 0.25
# While paused in lockstep, `while_waiting` runs this often (wall s), e.g. to repeat a best-effort /clock.
WAIT_SLICE_S = 0.05


class RealTimePacer:
    """Sleeps so that sim time advances `rate` times as fast as the wall clock."""

    def __init__(self, steps: int, rate_hz: float) -> None:
        self.rate_hz = rate_hz  # physics steps per sim second
        self.restart(steps)

    def restart(self, steps: int) -> None:
        """Paces from now on, as if the simulation had just reached `steps`."""
        self.wall, self.steps = time.monotonic(), steps

    def pace(self, steps: int, rate: float) -> None:
        """Sleeps until `steps` is due at `rate` sim seconds per wall second."""
        ahead = self.wall + (steps - self.steps) / self.rate_hz / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        elif ahead < -MAX_PACING_LAG_S:
            self.restart(steps)


class Lockstep:
    """What the physics loop waits for in lockstep: the next RTAction and the executor's commands for it.

    `on_action`/`on_command` come from the ROS callbacks' thread, `after_tick` from the physics loop's.
    """

    def __init__(self, period_steps: int) -> None:
        self.period_steps = period_steps  # physics steps of one control period
        self.condition = threading.Condition()
        self.actions = 0  # RTActions received so far
        self.handled = 0  # ... of which the physics loop has synchronised on
        self.action_step = 0  # physics step at which the newest one arrived
        self.mode = Mode.TERMINATE
        self.commands: set[str] = set()  # commands received since the newest action
        self.engaged = False  # actions are flowing: run unpaced, pausing each period
        self.pause_step = 0

    def on_action(self, mode: int, step: int) -> None:
        with self.condition:
            self.actions += 1
            self.action_step = step
            self.mode = Mode(mode) if mode in (0, 1, 2) else Mode.TERMINATE
            self.commands = set()
            self.condition.notify_all()

    def on_command(self, kind: str) -> None:
        """`kind`: cmd_vel, arm or gripper."""
        with self.condition:
            self.commands.add(kind)
            self.condition.notify_all()

    def commands_complete(self) -> bool:
        needed = {"cmd_vel", "arm", "gripper"} if self.mode == Mode.ARM else {"cmd_vel"}
        return needed <= self.commands

    def after_tick(
        self, steps: int, timeout_s: float, while_waiting: Callable[[], None], running: Callable[[], bool]
    ) -> bool:
        """Called after each physics tick at `steps`: waits for the controller where lockstep pauses (at most
        `timeout_s` wall seconds), and says whether the simulation runs on unpaced."""
        if self.actions > self.handled:
            # An action arrived while running: wait for its commands, then pace from it.
            self._await(False, timeout_s, while_waiting, running)
            self.engaged, self.pause_step = self.mode != Mode.TERMINATE, self.action_step + self.period_steps
        elif self.engaged and steps >= self.pause_step:
            self.engaged = self._await(True, timeout_s, while_waiting, running)
            self.pause_step = steps + self.period_steps
        return self.engaged

    def _await(
        self, new_action: bool, timeout_s: float, while_waiting: Callable[[], None], running: Callable[[], bool]
    ) -> bool:
        """Blocks (bounded) for the next action if `new_action`, then for its commands; False on a timeout or
        a TERMINATE."""
        deadline = time.monotonic() + timeout_s
        with self.condition:
            for done in ((lambda: self.actions > self.handled) if new_action else None, self.commands_complete):
                while done is not None and not done() and running():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        self.handled = self.actions
                        return False
                    self.condition.wait(min(remaining, WAIT_SLICE_S))
                    while_waiting()
            self.handled = self.actions
            return self.mode != Mode.TERMINATE

"""The action executor's motion control without ROS: RT-1 actions in, limited robot commands out.

`MotionController` holds everything rt_action_executor decides: the base velocity of BASE actions with
its acceleration ramp, the arm step of ARM actions (IK, then the joint step limiter), the gripper
position, the servo twist, the action watchdog and the e-stop latch. It runs on an explicit clock (every
call gets the time in nanoseconds) and returns plain values (`Commands`), so it is tested without DDS and
the node only converts between messages and these values.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pinocchio as pin

from rt_policy_node.policies.policy import Action, Mode, action_is_finite
from rt_policy_node.robot.kinematics import ArmKinematics
from rt_policy_node.robot.limits import (
    box_excursion,
    clamp_norm,
    clamp_to_box,
    joint_step_fraction,
    keep_inside_box,
    largest_fraction,
    rate_limit,
    rotation_step,
)
from rt_policy_node.robot.profile import RobotProfile

NS = 1_000_000_000
# An arm step is scaled back to within 2**-BISECTION_STEPS of the longest fraction that holds every limit.
BISECTION_STEPS = 12
# Points of the joint-space path to an arm target (besides the target) that must stay inside the workspace.
PATH_SAMPLES = 3


@dataclass
class Timing:
    """The executor's run-time adjustable time limits (its parameters of the same names)."""

    action_timeout_s: float = 1.0  # no action for this long: the watchdog stops the robot
    joint_state_timeout_s: float = 0.5  # older joint positions cannot seed IK
    max_action_age_s: float = 1.0  # actions stamped longer ago, or this far ahead, are rejected; 0: no check


@dataclass(frozen=True)
class ArmCommand:
    """An arm joint target (profile order), to be reached `duration_s` after it is sent."""

    positions: np.ndarray
    duration_s: float


@dataclass
class Commands:
    """What to send now; None is nothing of that kind. The reasons are for the log."""

    twist: np.ndarray | None = None  # base velocity [vx, vy, wz]
    arm: ArmCommand | None = None
    gripper: np.ndarray | None = None  # gripper joint positions, reached within one control period
    servo: np.ndarray | None = None  # end-effector twist [vx, vy, vz, wx, wy, wz] in the base frame
    rejected: str | None = None  # why (part of) an action was not executed
    stopped: str | None = None  # why the robot was just stopped
    warning: str | None = None  # something worth knowing that changed the command (IK fell short)


@dataclass
class _Motion:
    """What one episode of motion remembers between calls; a stop starts it afresh."""

    twist: np.ndarray
    arm_velocity: np.ndarray
    ramp_ns: int | None = None  # how far the base ramp has spent its acceleration
    base_target: np.ndarray = field(default_factory=lambda: np.zeros(3))
    base_until_ns: int = 0
    servo_until_ns: int = 0
    servo_step: tuple[np.ndarray, np.ndarray] = field(default_factory=lambda: (np.zeros(3), np.zeros(3)))
    arm_command_ns: int = 0
    arm_from: np.ndarray | None = None  # the measured positions the last arm command started from
    last_action_ns: int | None = None
    timed_out: bool = False


class MotionController:
    """Turns actions into base, arm and gripper commands for the robot `profile` describes."""

    def __init__(
        self,
        profile: RobotProfile,
        kinematics: ArmKinematics,
        *,
        servo: bool = False,
        stream_period_s: float = 0.05,
        timing: Timing | None = None,
        estopped: bool = False,
    ) -> None:
        self.profile = profile
        self.kinematics = kinematics
        self.servo = servo
        self.stream_period_s = stream_period_s
        self.timing = timing or Timing()
        self.estopped = estopped
        # Latest finite position of each joint, and when it arrived (ns).
        self._joints: dict[str, tuple[float, int]] = {}
        self.reset()

    @property
    def _period_ns(self) -> int:
        return int(self.profile.control_period_s * NS)

    @property
    def _stream_ns(self) -> int:
        return int(self.stream_period_s * NS)

    def reset(self) -> None:
        """Forgets all motion in progress (the base's ramp, the arm's velocity, the watchdog)."""
        self._m = _Motion(twist=np.zeros(3), arm_velocity=np.zeros(len(self.profile.arm_joints)))

    # -- joints -----------------------------------------------------------------------------------

    def update_joints(self, names: list[str], positions: list[float], now_ns: int) -> None:
        """Records joint positions; a NaN/inf position (a driver before homing) leaves that joint to go stale."""
        if len(positions) != len(names):
            return
        self._joints.update((n, (float(p), now_ns)) for n, p in zip(names, positions, strict=True) if np.isfinite(p))

    def arm_positions(self, now_ns: int) -> np.ndarray | None:
        """Current arm joint positions in profile order, or None when any of them is missing or stale."""
        timeout_ns = self.timing.joint_state_timeout_s * NS
        latest = [self._joints.get(name) for name in self.profile.arm_joints]
        if any(entry is None or now_ns - entry[1] > timeout_ns for entry in latest):
            return None
        return np.array([position for position, _ in latest])

    # -- actions ----------------------------------------------------------------------------------

    def act(self, action: Action, now_ns: int, stamp_ns: int = 0) -> Commands:
        """The commands for one action received at `now_ns`, computed from a camera frame of `stamp_ns` (0: unknown)."""
        if not action_is_finite(action):
            return Commands(rejected="NaN or inf in the action")
        stale = self._age_problem(stamp_ns, now_ns)
        if stale:
            return Commands(rejected=stale)
        m = self._m
        m.last_action_ns, m.timed_out = now_ns, False
        if self.estopped:
            return Commands()
        commands = Commands()
        m.base_target = np.zeros(3)
        if action.mode != Mode.ARM:
            m.servo_until_ns = 0  # a streamed arm step ends with the next non-arm action, not a period later
        if action.mode == Mode.TERMINATE:
            m.twist = np.zeros(3)
        elif action.mode == Mode.BASE:
            m.base_target = self._base_velocity(action)
            m.base_until_ns = now_ns + self._period_ns
        else:
            self._command_arm(action, now_ns, commands)
            joints = self.profile.gripper_joints
            commands.gripper = np.full(len(joints), self.profile.gripper_position(action.gripper_closedness))
        commands.twist = self._next_twist(now_ns, react=True)
        if self.servo and action.mode != Mode.ARM:
            commands.servo = np.zeros(6)
        return commands

    def _age_problem(self, stamp_ns: int, now_ns: int) -> str | None:
        """Why an action is too old (a backlog after slow inference) or stamped ahead (a clock jump) to act on."""
        limit_ns = int(self.timing.max_action_age_s * NS)
        if limit_ns <= 0 or stamp_ns == 0:
            return None
        if now_ns - stamp_ns > limit_ns:
            return "stamped longer ago than max_action_age_s"
        if stamp_ns - now_ns > limit_ns:
            return "stamped further ahead than max_action_age_s (a clock jump?)"
        return None

    # -- base -------------------------------------------------------------------------------------

    def _base_velocity(self, action: Action) -> np.ndarray:
        """[vx, vy, wz]: the per-step displacement spread over one control period, clamped."""
        profile, limits = self.profile, self.profile.limits
        period = profile.control_period_s
        linear = np.asarray(action.base_displacement, float) * profile.scale.base_displacement / period
        angular = action.base_rotation * profile.scale.base_rotation / period
        linear = clamp_norm(linear, limits.base_linear_velocity)
        angular = float(np.clip(angular, -limits.base_angular_velocity, limits.base_angular_velocity))
        return np.array([*linear, angular])

    def _next_twist(self, now_ns: int, react: bool = False) -> np.ndarray:
        """The base target for now, approached under the profile's acceleration limits.

        Acceleration is spent by time: a stream tick spends the time since the last step, a new action (`react`)
        reacts at once by spending up to one stream period ahead, which the following ticks then skip. So an
        action arriving just after a tick never doubles the step; the ramp runs at most one period early.
        """
        m, limits, period_ns = self._m, self.profile.limits, self._stream_ns
        target = m.base_target if now_ns < m.base_until_ns else np.zeros(3)
        until = now_ns + period_ns if react else now_ns
        # Nothing spent yet, or the clock jumped back (a restarted simulation): start afresh.
        fresh = m.ramp_ns is None or m.ramp_ns > until + period_ns
        spent = until - period_ns if fresh else m.ramp_ns
        dt = min(max(0, until - spent), period_ns) / NS
        m.ramp_ns = max(spent, until)
        linear = rate_limit(target[:2], m.twist[:2], limits.base_linear_acceleration * dt)
        angular = rate_limit(target[2:], m.twist[2:], limits.base_angular_acceleration * dt)
        m.twist = np.concatenate([linear, angular])
        return m.twist

    def stream(self, now_ns: int) -> Commands:
        """The commands of one stream tick: the base velocity (and servo twist) for now, or the watchdog's stop."""
        m = self._m
        timeout_ns = int(self.timing.action_timeout_s * NS)
        if m.last_action_ns is not None and not m.timed_out and now_ns - m.last_action_ns > timeout_ns:
            m.timed_out = True
            return self.stop(f"no RTAction for {self.timing.action_timeout_s} s", now_ns)
        if self.estopped or m.timed_out:
            return Commands(twist=np.zeros(3), servo=np.zeros(6) if self.servo else None)
        commands = Commands(twist=self._next_twist(now_ns))
        if self.servo:
            commands.servo = self._servo_twist(now_ns) if now_ns < m.servo_until_ns else np.zeros(6)
        return commands

    # -- arm --------------------------------------------------------------------------------------

    def _ee_step(self, action: Action) -> tuple[np.ndarray, np.ndarray]:
        """The action's end-effector translation (m) and rotation (matrix) for one step, clamped."""
        profile, limits = self.profile, self.profile.limits
        period = profile.control_period_s
        translation = clamp_norm(
            np.asarray(action.world_vector, float) * profile.scale.world_vector, limits.ee_linear_velocity * period
        )
        rotation = rotation_step(
            np.asarray(action.rotation_delta, float) * profile.scale.rotation_delta, limits.ee_angular_velocity * period
        )
        return translation, rotation

    def _command_arm(self, action: Action, now_ns: int, commands: Commands) -> None:
        q = self.arm_positions(now_ns)
        if q is None:
            commands.rejected = f"no recent joint_states for {list(self.profile.arm_joints)}; the arm cannot move"
            return
        profile, limits = self.profile, self.profile.limits
        translation, rotation = self._ee_step(action)
        if self.servo:
            self._m.servo_step = (translation, pin.log3(rotation))
            self._m.servo_until_ns = now_ns + self._period_ns
            return
        pose = self.kinematics.fk(q)
        box = (np.asarray(limits.workspace_min), np.asarray(limits.workspace_max))
        target = pin.SE3(rotation @ pose.rotation, clamp_to_box(pose.translation + translation, *box))
        ik = profile.ik
        rest = np.asarray(ik.rest_posture) if ik.rest_posture else None
        result = self.kinematics.solve(
            target, q, ik.iterations, ik.tolerance, ik.damping, ik.max_step, rest=rest, rest_gain=ik.rest_gain
        )
        if not result.reached:
            commands.warning = (
                f"IK target out of reach (pose error {result.error:.3f}): moving towards the nearest reachable pose"
            )
        commands.arm = self._arm_step(q, result.q, now_ns)
        self._m.arm_from = q

    def _arm_step(self, q: np.ndarray, q_target: np.ndarray, now_ns: int) -> ArmCommand:
        """The move `q -> q_target`, shortened until every limit holds on the command itself, over one period.

        Joint speeds stay within the profile's and the URDF's caps and change by at most joint_acceleration *
        period from the previous step's, except when slowing towards zero (a stop is always possible). The end
        effector's motion over the period, by forward kinematics of the target, stays within ee_linear_velocity
        and ee_angular_velocity, and the target and the joint-space path to it stay inside the workspace (an arm
        already outside may not go further out): when IK's answer overshoots, the step is scaled back towards `q`
        by bisection, to within 2**-BISECTION_STEPS of the longest step that holds. The limits hold exactly on
        the step sent: it is one that was checked.
        """
        m, period, limits = self._m, self.profile.control_period_s, self.profile.limits
        cap = np.minimum(self.kinematics.velocity_limit, limits.joint_velocity)
        recent = now_ns - m.arm_command_ns < 1.5 * period * NS
        previous = m.arm_velocity if recent else np.zeros_like(q)
        change = limits.joint_acceleration * period
        low = np.maximum(-cap, np.minimum(0.0, previous - change)) * period
        high = np.minimum(cap, np.maximum(0.0, previous + change)) * period
        delta = np.asarray(q_target, float) - q
        fraction = joint_step_fraction(delta, low, high)
        start = self.kinematics.fk(q)
        fraction = largest_fraction(lambda s: self._ee_holds(start, q, q + s * delta), fraction, BISECTION_STEPS)
        q_command = q + fraction * delta
        m.arm_velocity = (q_command - q) / period
        m.arm_command_ns = now_ns
        return ArmCommand(q_command, period)

    def _ee_holds(self, start: pin.SE3, q: np.ndarray, q_command: np.ndarray) -> bool:
        """Whether moving from `q` (end effector at `start`) to `q_command` in one period keeps the end-effector
        speed and workspace limits."""
        limits, period = self.profile.limits, self.profile.control_period_s
        end = self.kinematics.fk(q_command)
        if np.linalg.norm(end.translation - start.translation) > limits.ee_linear_velocity * period:
            return False
        if np.linalg.norm(pin.log3(end.rotation @ start.rotation.T)) > limits.ee_angular_velocity * period:
            return False
        low, high = np.asarray(limits.workspace_min), np.asarray(limits.workspace_max)
        allowed = box_excursion(start.translation, low, high)
        if box_excursion(end.translation, low, high) > allowed:
            return False
        path = (q + (q_command - q) * k / (PATH_SAMPLES + 1) for k in range(1, PATH_SAMPLES + 1))
        return all(box_excursion(self.kinematics.fk(point).translation, low, high) <= allowed for point in path)

    def _servo_twist(self, now_ns: int) -> np.ndarray:
        """The end-effector twist [v, w] in the base frame for the current ARM step, cut so that one stream period
        of it stays inside the workspace; zero while the arm's position is unknown (nothing to check it against)."""
        q = self.arm_positions(now_ns)
        if q is None:
            return np.zeros(6)
        translation, rotation = self._m.servo_step
        period, limits = self.profile.control_period_s, self.profile.limits
        linear = keep_inside_box(
            self.kinematics.fk(q).translation,
            translation / period,
            np.asarray(limits.workspace_min),
            np.asarray(limits.workspace_max),
            self.stream_period_s,
        )
        return np.concatenate([linear, rotation / period])

    # -- stopping ---------------------------------------------------------------------------------

    def set_estop(self, engaged: bool, now_ns: int) -> Commands:
        """Latches the e-stop (a stop now, nothing moves until released) or releases it (motion starts afresh)."""
        if engaged and not self.estopped:
            self.estopped = True
            return self.stop("emergency stop", now_ns)
        if not engaged and self.estopped:
            self.estopped = False
            self.reset()
        return Commands()

    def stop(self, reason: str, now_ns: int) -> Commands:
        """Zero twist now (no acceleration limit) and the arm held where it is; the watchdog's state is kept.

        With stale joint states the arm is held where its last command started: no arm command goes out without
        fresh ones, so the arm is within that one bounded step of there, and its last step must not run on."""
        last_action_ns, timed_out, arm_from = self._m.last_action_ns, self._m.timed_out, self._m.arm_from
        self.reset()
        self._m.last_action_ns, self._m.timed_out = last_action_ns, timed_out
        commands = Commands(twist=np.zeros(3), stopped=reason)
        if self.servo:
            commands.servo = np.zeros(6)
            return commands
        q = self.arm_positions(now_ns)
        if q is None:
            q = arm_from
        if q is not None:
            commands.arm = ArmCommand(q, self.stream_period_s)
        return commands

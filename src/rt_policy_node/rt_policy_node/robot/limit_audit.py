"""Measuring what the motion core sends against the robot profile's limits, and the adversarial campaign that does.

`CommandAudit` is written apart from the limiter it checks (it shares only `box_excursion` with it): it
measures every command on the command itself (forward kinematics of the arm's joint target against the
joint positions the core had; the twist and its change) and records each limit broken. `run_campaign` drives
a `MotionController` with hostile actions (random, extreme, denormal, unreachable, rapid reversals, bursts,
silences longer than the watchdog) on a simulated clock, with an arm that follows its commands, and audits
everything sent. tests/robot/test_motion_limits.py asserts no limit is broken; benchmarks/executor_limits.py
prints the figures.

The limits, as the executor promises them (`TOLERANCE` is the float slack of a comparison):
- arm: end-effector speed |p(q_target) - p(q)| / duration <= ee_linear_velocity and the rotation angle over
  the duration <= ee_angular_velocity; p(q_target) inside the workspace box, or (an arm already outside)
  no further outside than p(q); joint speed <= min(joint_velocity, the URDF's); joint speed changes by at
  most joint_acceleration * period from the previous step's, except that slowing towards zero is free (a
  stop is always possible); targets inside the URDF's joint range.
- base: |v_xy| <= base_linear_velocity, |w_z| <= base_angular_velocity; between two twists t apart, the
  change is at most the acceleration times (t + one stream period) (the ramp may run one period early),
  except a change to zero (a stop).
- servo: |v| and |w| within the end-effector limits, and the end effector inside the box one stream
  period ahead. Gripper: positions within [closed, open].
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pinocchio as pin

from rt_policy_node.policies.policy import Action, Mode
from rt_policy_node.robot.kinematics import ArmKinematics
from rt_policy_node.robot.limits import box_excursion
from rt_policy_node.robot.motion import NS, ArmCommand, Commands, MotionController
from rt_policy_node.robot.profile import RobotProfile

TOLERANCE = 1e-9
JOINT_STATE_PERIOD_S = 0.01


@dataclass
class Worst:
    """The largest measured value of each limited quantity over everything audited."""

    ee_linear_velocity: float = 0.0
    ee_angular_velocity: float = 0.0
    workspace_excursion: float = 0.0  # of a target beyond the box, m (0: every target inside)
    joint_velocity_ratio: float = 0.0  # speed over its cap
    joint_acceleration: float = 0.0  # speed change over the period (rad/s^2), slowing towards zero excluded
    base_linear_velocity: float = 0.0
    base_angular_velocity: float = 0.0
    base_linear_acceleration: float = 0.0  # change over (gap + one stream period), stops excluded
    base_angular_acceleration: float = 0.0


@dataclass
class CommandAudit:
    """Checks each command the core sends against the profile's limits."""

    profile: RobotProfile
    kinematics: ArmKinematics
    stream_period_s: float
    worst: Worst = field(default_factory=Worst)
    violations: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"arm": 0, "twist": 0, "servo": 0, "gripper": 0})
    _arm: tuple[int, np.ndarray] | None = None  # time and joint velocity of the previous arm command
    _twist: tuple[int, np.ndarray] | None = None

    def record(self, now_ns: int, q: np.ndarray | None, commands: Commands) -> None:
        """Audits everything in `commands`, sent at `now_ns` while the arm stood at `q`."""
        if commands.arm is not None:
            self.arm(now_ns, q, commands.arm)
        if commands.twist is not None:
            self.twist(now_ns, commands.twist)
        if commands.servo is not None:
            self.servo(q, commands.servo)
        if commands.gripper is not None:
            self.gripper(commands.gripper)

    def _check(self, name: str, value: float, limit: float, where: str) -> None:
        setattr(self.worst, name, max(getattr(self.worst, name), value))
        if not value <= limit + TOLERANCE:
            self.violations.append(f"{where}: {name} {value:.6g} > {limit:.6g}")

    def arm(self, now_ns: int, q: np.ndarray | None, command: ArmCommand) -> None:
        self.counts["arm"] += 1
        target, seconds = np.asarray(command.positions, float), command.duration_s
        where = f"arm command {self.counts['arm']} at {now_ns / NS:.3f} s"
        if q is None or not np.isfinite(target).all():
            self.violations.append(f"{where}: sent without joint positions, or not finite")
            return
        limits, kinematics = self.profile.limits, self.kinematics
        start, end = kinematics.fk(q), kinematics.fk(target)
        self._check(
            "ee_linear_velocity",
            np.linalg.norm(end.translation - start.translation) / seconds,
            limits.ee_linear_velocity,
            where,
        )
        self._check(
            "ee_angular_velocity",
            np.linalg.norm(pin.log3(end.rotation @ start.rotation.T)) / seconds,
            limits.ee_angular_velocity,
            where,
        )
        low, high = np.asarray(limits.workspace_min), np.asarray(limits.workspace_max)
        outside = box_excursion(end.translation, low, high)
        self.worst.workspace_excursion = max(self.worst.workspace_excursion, outside)
        if outside > box_excursion(start.translation, low, high) + TOLERANCE:
            self.violations.append(f"{where}: target {outside * 1000:.3f} mm outside the workspace")
        outside_range = np.maximum(kinematics.lower - target, 0) + np.maximum(target - kinematics.upper, 0)
        was_outside = np.maximum(kinematics.lower - q, 0) + np.maximum(q - kinematics.upper, 0)
        if (outside_range > was_outside + TOLERANCE).any():
            self.violations.append(f"{where}: target outside the URDF's joint range")
        velocity = (target - q) / seconds
        cap = np.minimum(kinematics.velocity_limit, limits.joint_velocity)
        self._check("joint_velocity_ratio", float(np.max(np.abs(velocity) / cap)), 1.0, where)
        period = self.profile.control_period_s
        recent = self._arm is not None and now_ns - self._arm[0] < 1.5 * period * NS
        previous = self._arm[1] if recent else np.zeros_like(velocity)
        # Slowing towards zero (same sign, smaller speed, or zero) is free; any other change is acceleration.
        braking = (velocity * previous >= 0) & (np.abs(velocity) <= np.abs(previous))
        change = np.where(braking, 0.0, np.abs(velocity - previous))
        self._check("joint_acceleration", float(change.max(initial=0.0)) / period, limits.joint_acceleration, where)
        self._arm = (now_ns, velocity)

    def twist(self, now_ns: int, twist: np.ndarray) -> None:
        self.counts["twist"] += 1
        twist = np.asarray(twist, float)
        where = f"twist {self.counts['twist']} at {now_ns / NS:.3f} s"
        limits = self.profile.limits
        self._check("base_linear_velocity", float(np.linalg.norm(twist[:2])), limits.base_linear_velocity, where)
        self._check("base_angular_velocity", abs(float(twist[2])), limits.base_angular_velocity, where)
        if self._twist is not None and np.any(twist != 0.0):
            then, previous = self._twist
            span = (now_ns - then) / NS + self.stream_period_s
            self._check(
                "base_linear_acceleration",
                float(np.linalg.norm(twist[:2] - previous[:2])) / span,
                limits.base_linear_acceleration,
                where,
            )
            self._check(
                "base_angular_acceleration",
                abs(float(twist[2] - previous[2])) / span,
                limits.base_angular_acceleration,
                where,
            )
        self._twist = (now_ns, twist)

    def servo(self, q: np.ndarray | None, twist: np.ndarray) -> None:
        self.counts["servo"] += 1
        twist = np.asarray(twist, float)
        where = f"servo twist {self.counts['servo']}"
        limits = self.profile.limits
        self._check("ee_linear_velocity", float(np.linalg.norm(twist[:3])), limits.ee_linear_velocity, where)
        self._check("ee_angular_velocity", float(np.linalg.norm(twist[3:])), limits.ee_angular_velocity, where)
        if not np.any(twist[:3]):
            return
        if q is None:
            self.violations.append(f"{where}: moving without joint positions")
            return
        position = self.kinematics.fk(q).translation
        low, high = np.asarray(limits.workspace_min), np.asarray(limits.workspace_max)
        ahead = box_excursion(position + twist[:3] * self.stream_period_s, low, high)
        self.worst.workspace_excursion = max(self.worst.workspace_excursion, ahead)
        if ahead > box_excursion(position, low, high) + TOLERANCE:
            self.violations.append(f"{where}: heads {ahead * 1000:.3f} mm outside the workspace")

    def gripper(self, positions: np.ndarray) -> None:
        self.counts["gripper"] += 1
        low, high = sorted((self.profile.gripper_open, self.profile.gripper_closed))
        if not ((np.asarray(positions) >= low - TOLERANCE) & (np.asarray(positions) <= high + TOLERANCE)).all():
            self.violations.append(f"gripper command {self.counts['gripper']}: {positions} outside [{low}, {high}]")


# -- the campaign ---------------------------------------------------------------------------------------

EXTREMES = (1.0, 2.0, 1e3, 1e30, 3.4e38, 1e-45, 1e-38)


def adversarial_actions(rng: np.random.Generator, count: int, period_s: float) -> Iterator[tuple[float, Action]]:
    """`count` hostile actions, each with the pause before it (s): a mix of runs of random, extreme and denormal
    values, one direction held far beyond reach, reversals every step, bursts and silences."""
    produced = 0
    while produced < count:
        kind = rng.choice(["random", "extreme", "unreachable", "reversal", "base"])
        direction = rng.normal(size=8)
        direction /= np.linalg.norm(direction)
        for step in range(int(rng.integers(3, 25))):
            if kind == "random":
                values = rng.uniform(-1, 1, 8)
            elif kind == "extreme":
                values = rng.choice(EXTREMES, 8) * rng.choice([-1.0, 1.0], 8)
            elif kind == "unreachable":
                values = direction * 1e3
            else:
                values = direction * (1.0 if step % 2 == 0 else -1.0) * rng.choice(EXTREMES[:3])
            mode = Mode.BASE if kind == "base" else Mode(rng.choice([1, 1, 1, 1, 1, 1, 2, 0]))
            with np.errstate(over="ignore"):  # 3 x float32's largest is inf, on purpose
                action = Action(
                    world_vector=values[:3].astype(np.float32),
                    rotation_delta=values[3:6].astype(np.float32),
                    gripper_closedness=float(np.float32(values[6] * 3)),
                    base_displacement=values[6:8].astype(np.float32),
                    base_rotation=float(np.float32(values[0])),
                    mode=mode,
                )
            pause = rng.choice([0.0, 0.01, 0.5 * period_s, period_s, period_s, period_s, 2 * period_s, 1.5])
            yield float(pause), action
            produced += 1
            if produced == count:
                return


@dataclass
class FollowingArm:
    """A simulated arm moving linearly in joint space to each target over its duration; `follow` < 1 lags."""

    q: np.ndarray
    follow: float = 1.0
    _move: tuple[np.ndarray, np.ndarray, int, int] | None = None  # from, to, start, end (ns)

    def command(self, now_ns: int, command: ArmCommand) -> None:
        target = self.q + self.follow * (np.asarray(command.positions) - self.q)
        self._move = (self.q.copy(), target, now_ns, now_ns + int(command.duration_s * NS))

    def at(self, now_ns: int) -> np.ndarray:
        if self._move is not None:
            start, end, t0, t1 = self._move
            self.q = start + (end - start) * min(1.0, (now_ns - t0) / max(1, t1 - t0))
        return self.q


def run_campaign(
    controller: MotionController,
    q0: np.ndarray,
    actions: Iterator[tuple[float, Action]],
    follow: float = 1.0,
    start_s: float = 1.0,
) -> CommandAudit:
    """Sends `actions` to `controller` on a simulated clock (joint states every 10 ms, stream ticks at its rate),
    with an arm that follows the commands, and audits every command sent."""
    audit = CommandAudit(controller.profile, controller.kinematics, controller.stream_period_s)
    arm = FollowingArm(np.array(q0, float), follow)
    joints = list(controller.profile.arm_joints)
    now_ns = int(start_s * NS)
    stream_ns = int(controller.stream_period_s * NS)
    next_tick = now_ns + stream_ns
    controller.update_joints(joints, list(arm.q), now_ns)

    def send(commands: Commands, q: np.ndarray) -> None:
        audit.record(now_ns, q, commands)
        if commands.arm is not None:
            arm.command(now_ns, commands.arm)

    for pause, action in actions:
        end = now_ns + int(pause * NS)
        while now_ns < end:
            now_ns = min(end, now_ns + int(JOINT_STATE_PERIOD_S * NS))
            controller.update_joints(joints, list(arm.at(now_ns)), now_ns)
            while next_tick <= now_ns:
                send(controller.stream(now_ns), controller.arm_positions(now_ns))
                next_tick += stream_ns
        send(controller.act(action, now_ns), controller.arm_positions(now_ns))
    return audit

"""MotionController (ROS-free) on an explicit clock: the base ramp, arm steps, gripper, servo, watchdog, e-stop."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pinocchio as pin
import pytest

from rt_policy_node.policies.policy import Action, Mode
from rt_policy_node.robot.motion import NS, Commands, MotionController, Timing
from rt_policy_node.robot.profile import RobotProfile

ARM = tuple(f"arm_joint_{i}" for i in range(1, 8))
# Near the sim robot's home (its profile's ik.rest_posture), but not at it, so the rest posture still has work to do.
Q0 = np.array([-2.1, 1.6, 1.5, 1.9, -1.6, 1.5, -0.1])
STREAM_S = 0.05
JOINT_STATE_S = 0.01  # how often the simulated robot reports its joints


class Drive:
    """A controller on a simulated clock: a robot standing at `q` reports its joints, stream ticks fire at 20 Hz,
    and every command is kept with the time it was sent."""

    def __init__(self, profile: RobotProfile, kinematics, q: np.ndarray = Q0, start_s: float = 1.0, **kwargs) -> None:
        self.profile = profile
        self.controller = MotionController(profile, kinematics, stream_period_s=STREAM_S, **kwargs)
        self.q = np.array(q, float)
        self.now_ns = int(start_s * NS)
        self.next_tick_ns = self.now_ns + int(STREAM_S * NS)
        self.sent: list[tuple[float, Commands]] = []
        self.report_joints()

    @property
    def now(self) -> float:
        return self.now_ns / NS

    def report_joints(self) -> None:
        self.controller.update_joints([*ARM, "gripper_left_finger_joint"], [*self.q, 0.04], self.now_ns)

    def keep(self, commands: Commands) -> Commands:
        self.sent.append((self.now, commands))
        return commands

    def act(self, action: Action, stamp_s: float = 0.0) -> Commands:
        return self.keep(self.controller.act(action, self.now_ns, round(stamp_s * NS)))

    def advance(self, seconds: float) -> None:
        """Moves time on in joint-state steps, running every stream tick that falls due."""
        end_ns = self.now_ns + round(seconds * NS)
        while self.now_ns < end_ns:
            self.now_ns = min(end_ns, self.now_ns + int(JOINT_STATE_S * NS))
            self.report_joints()
            while self.next_tick_ns <= self.now_ns:
                self.keep(self.controller.stream(self.now_ns))
                self.next_tick_ns += int(STREAM_S * NS)

    def twists(self, since: float = 0.0) -> list[tuple[float, np.ndarray]]:
        return [(t, c.twist) for t, c in self.sent if c.twist is not None and t >= since - 1e-9]

    def arm(self) -> list[np.ndarray]:
        return [c.arm.positions for _, c in self.sent if c.arm is not None]

    def servo(self, since: float = 0.0) -> list[tuple[float, np.ndarray]]:
        return [(t, c.servo) for t, c in self.sent if c.servo is not None and t >= since - 1e-9]


def base_action(x: float = 0.5, y: float = 0.0, yaw: float = 0.1) -> Action:
    return Action(base_displacement=np.array([x, y], np.float32), base_rotation=yaw, mode=Mode.BASE)


@pytest.fixture
def drive(profile, kinematics):
    return lambda **kwargs: Drive(profile, kinematics, **kwargs)


def test_base_mode_streams_the_displacement_as_a_velocity_for_one_period(drive, profile):
    d = drive()
    d.advance(0.02)  # the action arrives between two stream ticks
    start = d.now
    d.act(base_action(0.5, -0.25, 0.1))
    d.advance(1.0)
    period = profile.control_period_s
    expected = np.array([0.5 * 0.1, -0.25 * 0.1, 0.1]) / period
    twists = d.twists(start)
    # Reached within the acceleration limits, held until one period after the action, then ramped down.
    cruising = [t for t, v in twists if np.allclose(v, expected, atol=1e-6)]
    assert cruising and cruising[-1] <= start + period + STREAM_S + 1e-6
    step = profile.limits.base_linear_acceleration * STREAM_S
    for (_, v0), (_, v1) in itertools.pairwise(twists):
        assert abs(v1[0] - v0[0]) <= step + 1e-9
    # The action's immediate step and a stream tick just after it share one period's acceleration.
    assert max(abs(v[0]) for t, v in twists if t <= start + STREAM_S + 1e-9) <= step + 1e-9
    assert np.allclose(twists[-1][1], 0.0)
    assert not d.arm() and all(c.gripper is None for _, c in d.sent), "the arm holds in base mode"


def test_base_ramp_starts_afresh_after_the_clock_jumps_back(drive, profile):
    d = drive(start_s=100.0)
    d.act(base_action(1.0, 0.0, 0.0))
    d.advance(0.5)
    d.now_ns, d.next_tick_ns = NS, NS + int(STREAM_S * NS)  # a restarted simulation
    first = d.act(base_action(1.0, 0.0, 0.0)).twist
    assert 0 < first[0] <= profile.limits.base_linear_acceleration * STREAM_S + 1e-9


def test_arm_mode_moves_the_end_effector_by_the_commanded_delta(drive, profile, kinematics):
    d = drive()
    action = Action(
        world_vector=np.array([0.5, -0.4, 0.2], np.float32),
        rotation_delta=np.array([0.0, 0.0, 0.1], np.float32),
        gripper_closedness=1.0,
        mode=Mode.ARM,
    )
    commands = d.act(action)
    assert commands.arm.duration_s == pytest.approx(profile.control_period_s)
    before, after = kinematics.fk(Q0), kinematics.fk(commands.arm.positions)
    np.testing.assert_allclose(after.translation - before.translation, [0.025, -0.02, 0.01], atol=1e-3)
    np.testing.assert_allclose(after.rotation, pin.rpy.rpyToMatrix(0, 0, 0.1) @ before.rotation, atol=1e-3)
    np.testing.assert_allclose(commands.gripper, [0.0])
    np.testing.assert_allclose(d.act(Action(gripper_closedness=-1.0, mode=Mode.ARM)).gripper, [0.04])
    d.advance(0.3)
    assert all(np.allclose(v, 0.0) for _, v in d.twists()), "the base holds still in arm mode"


def test_arm_commands_are_clamped_and_never_jump(drive, profile, kinematics):
    d = drive()
    moved = kinematics.fk(d.act(Action(world_vector=np.ones(3, np.float32), mode=Mode.ARM)).arm.positions)
    assert np.linalg.norm(moved.translation - kinematics.fk(Q0).translation) == pytest.approx(
        profile.limits.ee_linear_velocity * profile.control_period_s, abs=2e-3
    )
    # Straight up is out of reach from a stretched arm: the command stays within one step's joint limits.
    d.q = np.array([0.0, 0.05, 0.0, -0.05, 0.0, 0.05, 0.0])
    d.advance(0.5)
    commands = d.act(
        Action(world_vector=np.array([0.0, 0.0, 1.0], np.float32), rotation_delta=np.full(3, 1.5, np.float32), mode=1)
    )
    assert commands.warning and "out of reach" in commands.warning
    step = np.abs(commands.arm.positions - d.q)
    assert step.max() <= profile.limits.joint_velocity * profile.control_period_s + 1e-9
    for _ in range(3):
        d.act(Action(base_displacement=np.ones(2, np.float32), base_rotation=math.pi, mode=Mode.BASE))
        d.advance(0.3)
    peak = max(d.twists(), key=lambda tv: abs(tv[1][2]))[1]
    assert np.linalg.norm(peak[:2]) <= profile.limits.base_linear_velocity + 1e-9
    assert abs(peak[2]) == pytest.approx(profile.limits.base_angular_velocity)


def test_a_nan_joint_state_never_reaches_a_command(drive):
    d = drive()
    d.q[2] = np.nan
    d.advance(0.6)  # longer than joint_state_timeout_s: the NaN joint's last finite value goes stale
    commands = d.act(Action(world_vector=np.full(3, 0.5, np.float32), mode=Mode.ARM))
    assert commands.arm is None and "no recent joint_states" in commands.rejected
    d.controller.update_joints(list(ARM), [0.0], d.now_ns)  # names and positions that do not pair up: ignored
    d.q = Q0.copy()
    d.advance(0.1)
    commands = d.act(Action(world_vector=np.full(3, 0.5, np.float32), mode=Mode.ARM))
    assert np.isfinite(commands.arm.positions).all()


@pytest.mark.parametrize(
    ("field", "value"),
    [("world_vector", [np.nan, 0, 0]), ("base_rotation", math.inf), ("gripper_closedness", -math.inf)],
)
def test_non_finite_actions_are_rejected(drive, field, value):
    d = drive()
    action = Action(mode=Mode.ARM)
    setattr(action, field, np.asarray(value, np.float32) if isinstance(value, list) else value)
    commands = d.act(action)
    assert commands == Commands(rejected="NaN or inf in the action")


def test_actions_stamped_too_long_ago_or_ahead_are_rejected(drive):
    d = drive(timing=Timing(max_action_age_s=0.5), start_s=5.0)
    assert "longer ago" in d.act(base_action(1.0), stamp_s=d.now - 1.0).rejected
    assert "further ahead" in d.act(base_action(1.0), stamp_s=d.now + 1.0).rejected
    d.advance(0.3)
    assert all(np.allclose(v, 0.0) for _, v in d.twists()), "neither moves the base"
    assert d.act(base_action(1.0), stamp_s=d.now - 0.2).twist[0] > 0, "a recent frame's action is executed"
    d.controller.timing.max_action_age_s = 0.0  # no check
    assert d.act(base_action(1.0), stamp_s=d.now - 100.0).rejected is None


def test_terminate_zeroes_the_twist_at_once(drive):
    d = drive()
    d.act(base_action(1.0))
    d.advance(0.2)
    assert np.abs(d.twists()[-1][1]).max() > 0
    np.testing.assert_array_equal(d.act(Action(mode=Mode.TERMINATE)).twist, 0.0)
    count = len(d.sent)
    d.advance(0.3)
    assert all(np.allclose(c.twist, 0.0) for _, c in d.sent[count:])


def test_watchdog_stops_within_one_stream_period(drive):
    d = drive(timing=Timing(action_timeout_s=0.2))
    start = d.now
    d.act(base_action(1.0))
    d.advance(0.6)
    twists = d.twists(start)
    moving = [t for t, v in twists if np.abs(v).max() > 0]
    stopped = [t for t, v in twists if t > moving[-1]]
    assert moving[-1] <= start + 0.2 + 1e-6
    assert stopped[0] <= start + 0.2 + STREAM_S + 1e-6
    assert all(np.allclose(v, 0) for t, v in twists if t >= stopped[0])
    stops = [c for _, c in d.sent if c.stopped]
    assert len(stops) == 1 and stops[0].stopped == "no RTAction for 0.2 s"
    np.testing.assert_allclose(stops[0].arm.positions, Q0)
    assert stops[0].arm.duration_s == STREAM_S, "the arm is told to hold where it is"


def test_a_stop_with_stale_joint_states_holds_the_arm_where_its_last_step_started(drive):
    d = drive()
    step = d.act(Action(world_vector=np.array([0.3, -0.2, 0.1], np.float32), mode=Mode.ARM))
    assert step.arm is not None and not np.allclose(step.arm.positions, Q0)
    d.now_ns += NS  # the joint states stop arriving
    assert d.controller.arm_positions(d.now_ns) is None
    stop = d.controller.stop("shutting down", d.now_ns)
    np.testing.assert_allclose(stop.arm.positions, Q0)
    assert d.controller.stop("shutting down", d.now_ns).arm is None, "after the hold nothing is left to hold"


def test_estop_stops_at_once_and_latches_until_released(drive):
    d = drive()
    d.act(base_action(1.0))
    d.advance(0.1)
    stop = d.keep(d.controller.set_estop(True, d.now_ns))
    np.testing.assert_array_equal(stop.twist, 0.0)
    np.testing.assert_allclose(stop.arm.positions, Q0)
    assert stop.stopped == "emergency stop"
    assert d.controller.set_estop(True, d.now_ns) == Commands(), "a repeated e-stop sends nothing new"
    count = len(d.sent)
    assert d.act(base_action(1.0)) == Commands()
    assert d.act(Action(world_vector=np.ones(3, np.float32), mode=Mode.ARM)) == Commands()
    d.advance(0.5)
    assert all(c.twist is None or np.allclose(c.twist, 0) for _, c in d.sent[count:])
    assert len(d.arm()) == 1, "only the hold command while the e-stop is latched"
    assert d.controller.set_estop(False, d.now_ns) == Commands()
    resume = d.now
    d.act(base_action(1.0))
    d.advance(0.1)
    assert any(v[0] > 0 for _, v in d.twists(resume)), "motion after release"


def test_a_controller_built_under_a_latched_estop_stays_stopped(drive):
    d = drive(estopped=True)
    assert d.act(base_action(1.0)) == Commands()
    d.advance(0.2)
    assert all(np.allclose(v, 0) for _, v in d.twists())


def test_servo_mode_streams_an_end_effector_twist(drive, profile):
    d = drive(servo=True)
    d.advance(0.02)
    start = d.now
    commands = d.act(Action(world_vector=np.array([0.5, 0.0, -0.5], np.float32), gripper_closedness=-1.0, mode=1))
    assert commands.arm is None and commands.servo is None, "the arm step streams from the next tick"
    np.testing.assert_allclose(commands.gripper, [0.04])
    d.advance(0.6)
    moving = [(t, v) for t, v in d.servo(start) if abs(v[0]) > 0]
    assert moving and all(t <= start + profile.control_period_s + STREAM_S for t, _ in moving)
    expected = 0.5 * 0.05 / profile.control_period_s
    np.testing.assert_allclose(moving[0][1], [expected, 0, -expected, 0, 0, 0], atol=1e-9)
    assert not d.arm()


def test_servo_twist_never_leaves_the_workspace(profile, kinematics):
    top = kinematics.fk(Q0).translation[2]
    ceiling = replace(profile.limits, workspace_max=(*profile.limits.workspace_max[:2], top))
    d = Drive(replace(profile, limits=ceiling), kinematics, servo=True)
    d.act(Action(world_vector=np.array([0.0, 0.0, 1.0], np.float32), mode=Mode.ARM))
    d.advance(0.2)
    assert d.servo() and all(v[2] <= 0 for _, v in d.servo()), "no upward twist at the workspace's ceiling"


def test_servo_arm_motion_stops_at_once_on_terminate_or_base(drive):
    d = drive(servo=True)
    for interrupt in (Action(mode=Mode.TERMINATE), base_action()):
        d.act(Action(world_vector=np.array([0.5, 0.0, 0.0], np.float32), mode=Mode.ARM))
        d.advance(0.1)
        assert abs(d.servo()[-1][1][0]) > 0, "the arm step streams"
        np.testing.assert_array_equal(d.act(interrupt).servo, 0.0)
        sent = d.now
        d.advance(0.1)  # less than one control period: an uncancelled arm step would still stream
        later = d.servo(sent + 1e-6)
        assert later and all(v[0] == 0 for _, v in later), f"{interrupt.mode.name} cancels the arm step"

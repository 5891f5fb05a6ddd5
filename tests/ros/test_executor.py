"""rt_action_executor: IK on the project's URDF, command limits, and the node over real DDS on sim time."""

from __future__ import annotations

import itertools
import math
import signal

import numpy as np
import pinocchio as pin
import pytest
from geometry_msgs.msg import TwistStamped
from harness import CONFIG, URDF, SimClock, wait_for
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

from rt_msgs.msg import RTAction
from rt_policy_node.policies.policy import Action, Mode
from rt_policy_node.robot.kinematics import ArmKinematics
from rt_policy_node.robot.limits import clamp_norm, keep_inside_box, limit_joint_step, rate_limit, rotation_step
from rt_policy_node.robot.profile import load_profile
from rt_policy_node.ros.conversions import action_to_msg, seconds_to_stamp, stamp_to_seconds
from rt_policy_node.ros.qos import RELIABLE

PROFILE = CONFIG / "profiles" / "sim.yaml"
ARM = tuple(f"arm_joint_{i}" for i in range(1, 8))
# Near the sim robot's home (its profile's ik.rest_posture), but not at it, so the rest posture still has work to do.
Q0 = np.array([-2.1, 1.6, 1.5, 1.9, -1.6, 1.5, -0.1])
KEEP = QoSProfile(depth=1000)


def find_share(package: str) -> str:
    assert package == "rt_bringup"
    return str(CONFIG.parent)


@pytest.fixture(scope="module")
def profile():
    return load_profile(PROFILE, find_share)


@pytest.fixture(scope="module")
def kinematics(profile):
    return ArmKinematics(URDF, profile.arm_joints, profile.base_frame, profile.ee_frame)


# -- kinematics and limits (ROS-free) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("translation", "rpy"),
    [
        ((0.03, -0.02, 0.01), (0.0, 0.0, 0.0)),
        ((-0.05, 0.0, 0.04), (0.1, -0.1, 0.2)),
        ((0.0, 0.06, -0.05), (0, 0, -0.3)),
    ],
)
def test_ik_moves_the_end_effector_by_the_commanded_delta(kinematics, translation, rpy):
    start = kinematics.fk(Q0)
    target = pin.SE3(pin.rpy.rpyToMatrix(*rpy) @ start.rotation, start.translation + np.array(translation))
    result = kinematics.solve(target, Q0)
    assert result.reached
    reached = kinematics.fk(result.q)
    np.testing.assert_allclose(reached.translation - start.translation, translation, atol=1e-4)
    assert np.linalg.norm(pin.log3(reached.rotation @ target.rotation.T)) < 1e-4
    assert np.all(result.q >= kinematics.lower) and np.all(result.q <= kinematics.upper)


def test_ik_of_an_unreachable_target_gets_as_close_as_it_can(kinematics):
    start = kinematics.fk(Q0)
    target = pin.SE3(start.rotation, np.array([3.0, 0.0, 1.0]))
    result = kinematics.solve(target, Q0)
    assert not result.reached
    reached = kinematics.fk(result.q).translation
    assert np.linalg.norm(reached - target.translation) < np.linalg.norm(start.translation - target.translation) - 0.3
    assert np.all(np.isfinite(result.q))
    assert np.all(result.q >= kinematics.lower) and np.all(result.q <= kinematics.upper)


def test_ik_spends_the_redundancy_on_the_rest_posture(kinematics, profile):
    rest = np.asarray(profile.ik.rest_posture)
    start = kinematics.fk(Q0)
    target = pin.SE3(start.rotation, start.translation + np.array([0.04, 0.03, -0.02]))
    plain = kinematics.solve(target, Q0)
    biased = kinematics.solve(target, Q0, rest=rest, rest_gain=profile.ik.rest_gain)
    assert plain.reached and biased.reached
    assert np.linalg.norm(biased.q - rest) < np.linalg.norm(plain.q - rest)
    np.testing.assert_allclose(kinematics.fk(biased.q).translation, target.translation, atol=1e-4)


def test_kinematics_refuses_wrong_joint_or_frame_names():
    with pytest.raises(ValueError, match="no joints named"):
        ArmKinematics(URDF, ("arm_joint_1", "elbow"), "base_link", "ee_link")
    with pytest.raises(ValueError, match="no frame named"):
        ArmKinematics(URDF, ARM, "base_link", "tool0")


def test_limits():
    np.testing.assert_allclose(clamp_norm([3.0, 4.0], 1.0), [0.6, 0.8])
    np.testing.assert_allclose(clamp_norm([0.3, 0.4], 1.0), [0.3, 0.4])
    np.testing.assert_allclose(rate_limit([1.0, 0.0], [0.0, 0.0], 0.25), [0.25, 0.0])
    np.testing.assert_allclose(
        keep_inside_box(np.array([1.0, 0.5, 0.5]), [0.2, -0.1, -0.3], [0, 0, 0.5], [1, 1, 1]), [0, -0.1, 0]
    )
    step = limit_joint_step(np.zeros(3), np.array([0.4, -0.1, 0.0]), np.array([0.1, 0.1, 0.1]))
    np.testing.assert_allclose(step, [0.1, -0.025, 0.0])
    np.testing.assert_array_equal(limit_joint_step(np.zeros(3), np.array([np.nan, 0.5, 0.0]), np.full(3, 0.1)), 0.0)
    np.testing.assert_array_equal(limit_joint_step(np.zeros(3), np.full(3, 0.5), np.full(3, np.nan)), 0.0)
    assert np.linalg.norm(pin.log3(rotation_step([0.0, 0.0, 1.0], 0.25))) == pytest.approx(0.25)


def test_profile_gripper_mapping_and_validation(profile, tmp_path):
    assert profile.urdf == URDF
    assert profile.gripper_position(-1.0) == pytest.approx(0.04)
    assert profile.gripper_position(1.0) == pytest.approx(0.0)
    assert profile.gripper_position(0.0) == pytest.approx(0.02)
    assert profile.gripper_position(7.0) == pytest.approx(0.0)
    bad = tmp_path / "bad.yaml"
    bad.write_text(PROFILE.read_text().replace("  joint_velocity:", "  joint_speed:"))
    with pytest.raises(ValueError, match="unknown keys"):
        load_profile(bad, find_share)
    bad.write_text(PROFILE.read_text().replace("workspace_max: [1.1, 0.8, 1.7]", "workspace_max: [1.1, 0.8, 0.1]"))
    with pytest.raises(ValueError, match="workspace"):
        load_profile(bad, find_share)


# -- the node -------------------------------------------------------------------------------------------


class Rig:
    """Drives one executor process: sim clock, a robot standing at `q`, actions in, commands collected."""

    def __init__(self, probe, launch, **params) -> None:
        self.probe = probe
        params = {"profile": str(PROFILE), "use_sim_time": True, "twist_stamped": True, "autostart": True, **params}
        self.node = launch("rt_action_executor", "rt_action_executor", config="executor.yaml", params=params)
        self.twists = probe.collect(TwistStamped, "cmd_vel", KEEP)
        self.arm = probe.collect(JointTrajectory, "arm_controller/joint_trajectory", KEEP)
        self.gripper = probe.collect(JointTrajectory, "gripper_controller/joint_trajectory", KEEP)
        self.servo = probe.collect(TwistStamped, "servo_node/delta_twist_cmds", KEEP)
        self.actions = probe.publisher(RTAction, "rt/action", RELIABLE)
        self.estop = probe.publisher(Bool, "rt/estop", RELIABLE)
        self.joint_states = probe.publisher(JointState, "joint_states", 10)
        self.q = Q0.copy()
        self.clock = SimClock(probe)
        if params["autostart"]:
            self.wait_until_ready()

    def wait_until_ready(self) -> None:
        self.probe.wait_for_subscribers(self.actions)
        self.probe.wait_for_subscribers(self.joint_states)
        self.advance(0.2)

    def publish_joints(self, now: float) -> None:
        msg = JointState(name=[*ARM, "gripper_left_finger_joint"], position=[*self.q, 0.04])
        msg.header.stamp = seconds_to_stamp(now)
        self.joint_states.publish(msg)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds, every_step=self.publish_joints)

    def send(self, action: Action) -> None:
        self.actions.publish(action_to_msg(action, instruction="test"))

    def twists_after(self, t: float) -> list[tuple[float, np.ndarray]]:
        out = []
        for msg in list(self.twists):
            stamp = stamp_to_seconds(msg.header.stamp)
            if stamp >= t - 1e-9:
                out.append((stamp, np.array([msg.twist.linear.x, msg.twist.linear.y, msg.twist.angular.z])))
        return out


@pytest.fixture
def rig(probe, launch):
    return lambda **params: Rig(probe, launch, **params)


def base_action(x: float = 0.5, y: float = 0.0, yaw: float = 0.1) -> Action:
    return Action(base_displacement=np.array([x, y], np.float32), base_rotation=yaw, mode=Mode.BASE)


def test_nothing_is_sent_until_the_lifecycle_node_is_activated(probe, rig):
    r = rig(autostart=False)
    client = probe.node.create_client(ChangeState, "rt_action_executor/change_state")
    assert client.wait_for_service(timeout_sec=20)

    def transition(transition_id: int) -> None:
        future = client.call_async(ChangeState.Request(transition=Transition(id=transition_id)))
        assert wait_for(lambda: future.done() and future.result(), what="a lifecycle transition").success

    r.send(base_action())
    r.advance(0.3)
    transition(Transition.TRANSITION_CONFIGURE)
    r.wait_until_ready()
    r.send(base_action())
    r.send(Action(world_vector=np.ones(3, np.float32), mode=Mode.ARM))
    r.advance(0.5)
    assert not r.twists and not r.arm and not r.gripper, "configured but inactive: nothing is sent"
    transition(Transition.TRANSITION_ACTIVATE)
    start = r.clock.now
    r.send(base_action())
    wait_for(lambda: any(v[0] > 0 for _, v in r.twists_after(start)), what="a moving twist after activation")
    transition(Transition.TRANSITION_DEACTIVATE)
    wait_for(lambda: np.allclose(r.twists_after(start)[-1][1], 0.0), what="a zero twist on deactivation")
    count = len(r.twists)
    r.advance(0.3)
    assert len(r.twists) == count, "nothing is sent once deactivated"


def test_base_mode_streams_the_displacement_as_a_velocity_for_one_period(rig, profile):
    r = rig()
    start = r.clock.now
    r.send(base_action(0.5, -0.25, 0.1))
    wait_for(lambda: r.twists_after(start), what="the first twist")
    r.advance(1.0)
    period = profile.control_period_s
    expected = np.array([0.5 * 0.1, -0.25 * 0.1, 0.1]) / period
    twists = r.twists_after(start)
    # Reached within the acceleration limits, held until one period after the action, then ramped down.
    cruising = [t for t, v in twists if np.allclose(v, expected, atol=1e-6)]
    assert cruising and cruising[-1] <= start + period + 0.05 + 1e-6
    stamps = [t for t, _ in twists]
    assert len(stamps) >= 15 and max(np.diff(stamps)) <= 0.05 + 0.02 + 1e-6
    step = profile.limits.base_linear_acceleration * 0.05
    for (_, v0), (_, v1) in itertools.pairwise(twists):
        assert abs(v1[0] - v0[0]) <= step + 1e-6
    # The action's immediate step and a stream tick just after it share one period's acceleration.
    assert max(abs(v[0]) for t, v in twists if t <= start + 0.05 + 1e-9) <= step + 1e-6
    assert np.allclose(twists[-1][1], 0.0)
    assert not r.arm and not r.gripper, "the arm holds in base mode"


def test_arm_mode_moves_the_end_effector_by_the_commanded_delta(rig, profile, kinematics):
    r = rig()
    start = r.clock.now
    action = Action(
        world_vector=np.array([0.5, -0.4, 0.2], np.float32),
        rotation_delta=np.array([0.0, 0.0, 0.1], np.float32),
        gripper_closedness=1.0,
        mode=Mode.ARM,
    )
    r.send(action)
    wait_for(lambda: r.arm and r.gripper, what="arm and gripper trajectories")
    trajectory = r.arm[-1]
    assert tuple(trajectory.joint_names) == ARM and len(trajectory.points) == 1
    point = trajectory.points[0]
    assert stamp_to_seconds(point.time_from_start) == pytest.approx(profile.control_period_s, abs=1e-6)
    before, after = kinematics.fk(Q0), kinematics.fk(np.array(point.positions))
    np.testing.assert_allclose(after.translation - before.translation, [0.025, -0.02, 0.01], atol=1e-3)
    np.testing.assert_allclose(after.rotation, pin.rpy.rpyToMatrix(0, 0, 0.1) @ before.rotation, atol=1e-3)
    gripper = r.gripper[-1]
    assert list(gripper.joint_names) == ["gripper_left_finger_joint"]
    assert gripper.points[0].positions[0] == pytest.approx(0.0)
    r.advance(0.3)
    assert all(np.allclose(v, 0.0) for _, v in r.twists_after(start)), "the base holds still in arm mode"


def test_a_signal_leaves_the_base_with_a_zero_twist(rig):
    r = rig()
    start = r.clock.now
    r.send(base_action(1.0, 0.0, 0.0))
    wait_for(lambda: any(v[0] > 0 for _, v in r.twists_after(start)), what="a moving twist")
    assert r.node.stop(signal.SIGINT) == 0
    wait_for(lambda: np.allclose(r.twists_after(start)[-1][1], 0.0), what="a last zero twist after SIGINT")


def test_a_nan_joint_state_never_reaches_a_command(rig):
    r = rig()
    r.q[2] = np.nan
    r.advance(0.6)  # longer than joint_state_timeout_s: the NaN joint's last finite value goes stale
    r.send(Action(world_vector=np.full(3, 0.5, np.float32), mode=Mode.ARM))
    r.advance(0.5)
    assert all(np.isfinite(p.positions).all() for t in r.arm for p in t.points)
    assert not r.arm, "no arm command while an arm joint has no valid position"
    r.q = Q0.copy()
    r.advance(0.1)
    r.send(Action(world_vector=np.full(3, 0.5, np.float32), mode=Mode.ARM))
    wait_for(lambda: r.arm, what="an arm trajectory once the joints are valid again")
    assert np.isfinite(r.arm[-1].points[0].positions).all()


def test_arm_commands_are_clamped_and_never_jump(rig, profile, kinematics):
    r = rig()
    r.send(Action(world_vector=np.ones(3, np.float32), mode=Mode.ARM))
    wait_for(lambda: r.arm, what="an arm trajectory")
    moved = kinematics.fk(np.array(r.arm[-1].points[0].positions)).translation - kinematics.fk(Q0).translation
    assert np.linalg.norm(moved) == pytest.approx(
        profile.limits.ee_linear_velocity * profile.control_period_s, abs=2e-3
    )
    # Straight up is out of reach from a stretched arm: the command stays within one step's joint limits.
    r.q = np.array([0.0, 0.05, 0.0, -0.05, 0.0, 0.05, 0.0])
    r.advance(0.2)
    count = len(r.arm)
    r.send(
        Action(
            world_vector=np.array([0.0, 0.0, 1.0], np.float32),
            rotation_delta=np.full(3, 1.5, np.float32),
            mode=Mode.ARM,
        )
    )
    wait_for(lambda: len(r.arm) > count, what="an arm trajectory towards an unreachable target")
    step = np.abs(np.array(r.arm[-1].points[0].positions) - r.q)
    assert step.max() <= profile.limits.joint_velocity * profile.control_period_s + 1e-6
    for _ in range(3):
        r.send(Action(base_displacement=np.ones(2, np.float32), base_rotation=math.pi, mode=Mode.BASE))
        r.advance(0.3)
    peak = max(r.twists_after(0.0), key=lambda tv: abs(tv[1][2]))[1]
    assert np.linalg.norm(peak[:2]) <= profile.limits.base_linear_velocity + 1e-6
    assert abs(peak[2]) == pytest.approx(profile.limits.base_angular_velocity)


def test_bad_actions_are_rejected(rig):
    r = rig()
    start = r.clock.now
    for field, value in (
        ("world_vector", [np.nan, 0, 0]),
        ("base_rotation", math.inf),
        ("gripper_closedness", -math.inf),
    ):
        msg = action_to_msg(Action(mode=Mode.ARM))
        setattr(msg, field, value)
        r.actions.publish(msg)
    msg = action_to_msg(base_action())
    msg.mode = 7
    r.actions.publish(msg)
    r.advance(0.5)
    assert not r.arm and not r.gripper
    assert all(np.allclose(v, 0.0) for _, v in r.twists_after(start))
    assert "rejected RTAction: NaN or inf" in r.node.output()
    assert "mode must be 0, 1 or 2" in r.node.output()


def test_actions_stamped_too_long_ago_or_ahead_are_rejected(rig):
    r = rig(max_action_age_s=0.5)
    start = r.clock.now
    for stamp in (start - 1.0, start + 1.0):  # the clock starts near 1 s
        r.actions.publish(action_to_msg(base_action(1.0), seconds_to_stamp(stamp)))
    r.advance(0.3)
    assert all(np.allclose(v, 0.0) for _, v in r.twists_after(start)), "neither moves the base"
    assert "stamped longer ago than max_action_age_s" in r.node.output()
    assert "stamped further ahead than max_action_age_s" in r.node.output()
    fresh = r.clock.now
    r.actions.publish(action_to_msg(base_action(1.0), seconds_to_stamp(fresh - 0.2)))
    r.advance(0.2)
    assert any(np.abs(v).max() > 0 for _, v in r.twists_after(fresh)), "a recent frame's action is executed"


def test_terminate_zeroes_the_twist_at_once(rig):
    r = rig()
    r.send(base_action(1.0))
    r.advance(0.2)
    start = r.clock.now
    r.send(Action(mode=Mode.TERMINATE))
    # The clock stands still until the zero twist is out: it is sent when the action arrives, not ramped down.
    wait_for(lambda: any(np.allclose(v, 0.0) for _, v in r.twists_after(start)), what="a zero twist after terminate")
    r.advance(0.3)
    assert all(np.allclose(v, 0.0) for _, v in r.twists_after(start + 1e-3))


def test_watchdog_stops_within_one_stream_period(rig):
    r = rig(action_timeout_s=0.2)
    start = r.clock.now
    r.send(base_action(1.0))
    r.advance(0.6)
    twists = r.twists_after(start)
    moving = [t for t, v in twists if np.abs(v).max() > 0]
    stopped = [t for t, v in twists if t > moving[-1]]
    assert moving[-1] <= start + 0.2 + 1e-6
    assert stopped[0] <= start + 0.2 + 0.05 + 0.02
    assert all(np.allclose(v, 0) for t, v in twists if t >= stopped[0])
    assert r.arm, "the arm is told to hold where it is"
    np.testing.assert_allclose(r.arm[-1].points[0].positions, Q0)


def test_estop_stops_at_once_and_latches_until_released(rig):
    r = rig()
    r.send(base_action(1.0))
    r.advance(0.1)
    count = len(r.twists)
    r.estop.publish(Bool(data=True))
    estop_time = r.clock.now
    wait_for(lambda: len(r.twists) > count and r.arm, what="a stop after the e-stop")
    r.send(base_action(1.0))
    r.send(Action(world_vector=np.ones(3, np.float32), mode=Mode.ARM))
    r.advance(0.5)
    twists = r.twists_after(estop_time)
    first_zero = next(i for i, (_, v) in enumerate(twists) if np.allclose(v, 0))
    assert twists[first_zero][0] <= estop_time + 0.05, "stopped within one stream period"
    assert all(np.allclose(v, 0) for _, v in twists[first_zero:])
    assert len(r.arm) == 1 and not r.gripper, "only the hold command while the e-stop is latched"
    r.estop.publish(Bool(data=False))
    r.advance(0.1)
    resume = r.clock.now
    r.send(base_action(1.0))
    wait_for(lambda: any(v[0] > 0 for _, v in r.twists_after(resume)), what="motion after release")


def test_servo_mode_streams_an_end_effector_twist(rig, profile):
    r = rig(arm_mode="servo")
    start = r.clock.now
    r.send(Action(world_vector=np.array([0.5, 0.0, -0.5], np.float32), gripper_closedness=-1.0, mode=Mode.ARM))
    wait_for(lambda: r.gripper, what="the gripper trajectory")
    r.advance(0.6)
    assert not r.arm
    moving = [m for m in r.servo if abs(m.twist.linear.x) > 0]
    assert moving and all(stamp_to_seconds(m.header.stamp) <= start + profile.control_period_s + 0.05 for m in moving)
    expected = 0.5 * 0.05 / profile.control_period_s
    assert moving[0].twist.linear.x == pytest.approx(expected)
    assert moving[0].twist.linear.z == pytest.approx(-expected)
    assert moving[0].header.frame_id == "base_link"
    assert r.gripper[-1].points[0].positions[0] == pytest.approx(0.04)


def test_servo_arm_motion_stops_at_once_on_terminate_or_base(rig):
    r = rig(arm_mode="servo")
    for interrupt in (Action(mode=Mode.TERMINATE), base_action()):
        r.send(Action(world_vector=np.array([0.5, 0.0, 0.0], np.float32), mode=Mode.ARM))
        r.advance(0.1)
        assert any(abs(m.twist.linear.x) > 0 for m in r.servo), "the arm step streams"
        count, sent = len(r.servo), r.clock.now
        r.send(interrupt)
        # The clock stands still: only the executor's reaction to the action can publish now.
        wait_for(lambda n=count: any(m.twist.linear.x == 0 for m in r.servo[n:]), what="a zero servo twist at once")
        r.advance(0.1)  # less than one control period: an uncancelled arm step would still stream
        later = [m for m in r.servo if stamp_to_seconds(m.header.stamp) > sent + 1e-9]
        assert later and all(m.twist.linear.x == 0 for m in later), f"{interrupt.mode.name} cancels the arm step"

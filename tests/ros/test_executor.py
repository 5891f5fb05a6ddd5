"""rt_action_executor over real DDS on sim time: lifecycle, topics, parameters and message conversion.

What the commands are (ramps, limits, watchdog, e-stop latch) is the motion core's, tested in tests/robot.
"""

from __future__ import annotations

import signal

import numpy as np
import pinocchio as pin
import pytest
from geometry_msgs.msg import TwistStamped
from harness import DESCRIPTION, URDF, SimClock, wait_for
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory

from rt_msgs.msg import RTAction
from rt_policy_node.policies.policy import Action, Mode
from rt_policy_node.robot.kinematics import ArmKinematics
from rt_policy_node.robot.profile import load_profile
from rt_policy_node.ros.conversions import action_to_msg, seconds_to_stamp, stamp_to_seconds
from rt_policy_node.ros.qos import RELIABLE

PROFILE = DESCRIPTION / "profiles" / "sim.yaml"
ARM = tuple(f"arm_joint_{i}" for i in range(1, 8))
# Near the sim robot's home (its profile's ik.rest_posture), but not at it, so the rest posture still has work to do.
Q0 = np.array([-2.1, 1.6, 1.5, 1.9, -1.6, 1.5, -0.1])
KEEP = QoSProfile(depth=1000)


def find_share(package: str) -> str:
    assert package == "rt_description"
    return str(DESCRIPTION)


@pytest.fixture(scope="module")
def profile():
    return load_profile(PROFILE, find_share)


@pytest.fixture(scope="module")
def kinematics(profile):
    return ArmKinematics(URDF, profile.arm_joints, profile.base_frame, profile.ee_frame)


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
    """Wiring: the stream timer runs on sim time and cmd_vel carries the core's twist (its ramp: tests/robot)."""
    r = rig()
    start = r.clock.now
    r.send(base_action(0.5, -0.25, 0.1))
    wait_for(lambda: r.twists_after(start), what="the first twist")
    r.advance(1.0)
    expected = np.array([0.5 * 0.1, -0.25 * 0.1, 0.1]) / profile.control_period_s
    twists = r.twists_after(start)
    assert any(np.allclose(v, expected, atol=1e-6) for _, v in twists)
    stamps = [t for t, _ in twists]
    assert len(stamps) >= 15 and max(np.diff(stamps)) <= 0.05 + 0.02 + 1e-6
    assert np.allclose(twists[-1][1], 0.0)
    assert twists[-1][0] > start + 0.5
    assert r.twists[-1].header.frame_id == "base_link"
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


def test_bad_actions_are_rejected(rig):
    """Wiring: the message's mode and stamp reach the checks, and every reason reaches the log."""
    r = rig(max_action_age_s=0.5)
    start = r.clock.now
    msg = action_to_msg(Action(mode=Mode.ARM))
    msg.world_vector = [np.nan, 0, 0]
    r.actions.publish(msg)
    msg = action_to_msg(base_action())
    msg.mode = 7
    r.actions.publish(msg)
    r.actions.publish(action_to_msg(base_action(1.0), seconds_to_stamp(start - 1.0)))
    r.advance(0.5)
    assert not r.arm and not r.gripper
    assert all(np.allclose(v, 0.0) for _, v in r.twists_after(start))
    output = r.node.output()
    assert "rejected RTAction: NaN or inf" in output
    assert "mode must be 0, 1 or 2" in output
    assert "stamped longer ago than max_action_age_s" in output
    fresh = r.clock.now
    r.actions.publish(action_to_msg(base_action(1.0), seconds_to_stamp(fresh - 0.2)))
    r.advance(0.2)
    assert any(np.abs(v).max() > 0 for _, v in r.twists_after(fresh)), "a recent frame's action is executed"


def test_watchdog_follows_action_timeout_s_set_at_run_time(probe, rig):
    """Wiring: a parameter set while running reaches the core's watchdog, whose stop holds the arm."""
    r = rig()
    client = probe.node.create_client(SetParameters, "rt_action_executor/set_parameters")
    assert client.wait_for_service(timeout_sec=20)
    request = SetParameters.Request(parameters=[Parameter("action_timeout_s", value=0.2).to_parameter_msg()])
    future = client.call_async(request)
    assert wait_for(lambda: future.done() and future.result(), what="set_parameters").results[0].successful
    start = r.clock.now
    r.send(base_action(1.0))
    r.advance(0.6)
    twists = r.twists_after(start)
    moving = [t for t, v in twists if np.abs(v).max() > 0]
    assert moving[-1] <= start + 0.2 + 1e-6
    assert all(np.allclose(v, 0) for t, v in twists if t > moving[-1])
    assert r.arm, "the arm is told to hold where it is"
    np.testing.assert_allclose(r.arm[-1].points[0].positions, Q0)
    assert "stopping: no RTAction for 0.2 s" in r.node.output()


def test_estop_stops_at_once_and_latches_until_released(rig):
    """Wiring: rt/estop reaches the core's latch at once, without waiting for the clock (its logic: tests/robot)."""
    r = rig()
    r.send(base_action(1.0))
    r.advance(0.1)
    count = len(r.twists)
    r.estop.publish(Bool(data=True))
    wait_for(lambda: r.arm, what="the arm's hold after the e-stop")
    twists = [v for _, v in r.twists_after(0.0)]
    stopped = count + next(i for i, v in enumerate(twists[count:]) if np.allclose(v, 0))
    r.send(base_action(1.0))
    r.advance(0.3)
    assert all(np.allclose(v, 0) for _, v in r.twists_after(0.0)[stopped:]), "nothing moves while it is latched"
    assert "emergency stop: zero twist" in r.node.output()
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


def test_a_failed_start_prints_one_line_naming_the_file(launch, tmp_path):
    missing = tmp_path / "no_such_robot.yaml"
    node = launch("rt_action_executor", "rt_action_executor", params={"profile": str(missing), "autostart": True})
    code = node.process.wait(timeout=60)
    lines = node.output().strip().splitlines()
    assert code == 1 and len(lines) == 1, node.output()
    assert "cannot start:" in lines[0] and str(missing) in lines[0]

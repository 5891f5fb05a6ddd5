"""rt_action_executor: RTAction in, robot commands out (base twist, arm and gripper trajectories), with safety.

A lifecycle node: it commands nothing until activated (`autostart` activates it at start-up). What to
command is decided by `robot.motion.MotionController` (ROS-free): ARM actions become an end-effector
target in the base frame, solved by IK over the URDF's arm joints and sent as a JointTrajectory that
arrives within one control period (or, in `servo` arm mode, a streamed end-effector twist for MoveIt
Servo); BASE actions become a velocity streamed at `stream_rate_hz` for one control period. Every command
is clamped to the robot profile's limits; an e-stop, a TERMINATE or the action watchdog zero the base and
hold the arm. This node declares the parameters, runs the lifecycle and converts messages.
"""

from __future__ import annotations

import math
import time

import numpy as np
from ament_index_python.packages import get_package_share_directory
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Twist, TwistStamped, Vector3
from rclpy.duration import Duration as RosDuration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from rt_msgs.msg import RTAction
from rt_policy_node.parameters import Parameter
from rt_policy_node.robot.kinematics import ArmKinematics
from rt_policy_node.robot.motion import Commands, MotionController, Timing
from rt_policy_node.robot.profile import RobotProfile, load_profile
from rt_policy_node.ros.conversions import msg_to_action, seconds_to_stamp
from rt_policy_node.ros.node_main import run_node
from rt_policy_node.ros.params import declare_all
from rt_policy_node.ros.qos import RELIABLE

WARN_THROTTLE_S = 5.0
# How long a stop on the way out (deactivate, shutdown, SIGINT/SIGTERM) waits for every subscriber to acknowledge it.
# With rt_bringup's Fast DDS profile acknowledgements take milliseconds; Fast DDS's default heartbeat (3 s) needs
# longer, and a stop that is not acknowledged in time was most likely delivered all the same.
STOP_DELIVERY_TIMEOUT_S = 2.0
ARM_MODES = ("trajectory", "servo")
# Joint states from any robot driver: best effort matches both reliable and best-effort publishers.
JOINT_STATES_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)

PARAMETERS = (
    Parameter(
        "profile",
        "package://rt_description/profiles/sim.yaml",
        "Robot profile YAML (path or package:// URI): joints, topics, scales, limits",
        read_only=True,
    ),
    Parameter(
        "arm_mode",
        "trajectory",
        "trajectory: IK -> JointTrajectory; servo: end-effector TwistStamped for MoveIt Servo",
        read_only=True,
    ),
    Parameter("twist_stamped", False, "Publish cmd_vel as TwistStamped (Jazzy+ controllers)", read_only=True),
    Parameter(
        "stream_rate_hz", 20.0, "Rate base (and servo) velocities are streamed at", low=1.0, high=1000.0, read_only=True
    ),
    Parameter("action_timeout_s", 1.0, "No RTAction for this long -> zero twist, arm holds", low=0.01, high=60.0),
    Parameter("joint_state_timeout_s", 0.5, "Older joint_states cannot seed IK", low=0.01, high=60.0),
    Parameter(
        "max_action_age_s",
        1.0,
        "RTActions stamped longer ago than this, or this far ahead, are rejected; 0: no check (unstamped ones"
        " never are)",
        low=0.0,
        high=3600.0,
    ),
    Parameter("autostart", False, "Configure and activate at start-up", read_only=True),
)


def duration(seconds: float) -> Duration:
    stamp = seconds_to_stamp(seconds)
    return Duration(sec=stamp.sec, nanosec=stamp.nanosec)


class ActionExecutor(LifecycleNode):
    """Turns RTActions into base, arm and gripper commands for the robot the profile describes."""

    def __init__(self) -> None:
        super().__init__("rt_action_executor")
        self._active = False  # first: destroy_node reads it, even on a node whose construction failed
        self._autostart = declare_all(self, PARAMETERS)["autostart"]
        self._configure_error = ""
        self.profile: RobotProfile | None = None
        self.motion: MotionController | None = None
        self._timing = Timing()
        self._sync_timing()
        self.add_post_set_parameters_callback(lambda _: self._sync_timing())
        self._warned: dict[str, float] = {}
        # The e-stop outlives lifecycle transitions: a cleanup and reconfigure must not release it.
        self._estop = False
        self.create_subscription(Bool, "rt/estop", self.on_estop, RELIABLE)
        if self._autostart:
            self.trigger_configure()
            if self.profile is None:
                raise RuntimeError(self._configure_error)
            self.trigger_activate()

    # -- lifecycle --------------------------------------------------------------------------------

    def _sync_timing(self) -> None:
        """Copies the run-time adjustable parameters into the motion core's timing."""
        for name in ("action_timeout_s", "joint_state_timeout_s", "max_action_age_s"):
            setattr(self._timing, name, self.get_parameter(name).value)

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        arm_mode = self.get_parameter("arm_mode").value
        try:
            if arm_mode not in ARM_MODES:
                raise ValueError(f"arm_mode must be one of {ARM_MODES}, got {arm_mode!r}")
            profile = load_profile(self.get_parameter("profile").value, get_package_share_directory)
            kinematics = ArmKinematics(profile.urdf, profile.arm_joints, profile.base_frame, profile.ee_frame)
        except Exception as err:
            # At autostart the failure ends the process with one line saying why; otherwise the node lives on.
            self._configure_error = str(err)
            if not self._autostart:
                self.get_logger().error(f"cannot configure: {err}")
            return TransitionCallbackReturn.FAILURE
        self.profile = profile
        self.servo = arm_mode == "servo"
        stream_period = 1.0 / self.get_parameter("stream_rate_hz").value
        self.motion = MotionController(
            profile,
            kinematics,
            servo=self.servo,
            stream_period_s=stream_period,
            timing=self._timing,
            estopped=self._estop,
        )
        self.stamped = self.get_parameter("twist_stamped").value
        topics = profile.topics
        self.cmd_vel_pub = self.create_lifecycle_publisher(
            TwistStamped if self.stamped else Twist, topics.cmd_vel, RELIABLE
        )
        if self.servo:
            self.servo_pub = self.create_lifecycle_publisher(TwistStamped, topics.servo_twist, RELIABLE)
        else:
            self.arm_pub = self.create_lifecycle_publisher(JointTrajectory, topics.arm_trajectory, RELIABLE)
        self.gripper_pub = self.create_lifecycle_publisher(JointTrajectory, topics.gripper_trajectory, RELIABLE)
        self._inputs = [
            self.create_subscription(RTAction, "rt/action", self.on_action, RELIABLE),
            self.create_subscription(JointState, "joint_states", self.on_joint_states, JOINT_STATES_QOS),
        ]
        self._stream_timer = self.create_timer(stream_period, self.on_stream)
        self.get_logger().info(
            f"configured for {profile.name} ({len(profile.arm_joints)} arm joints, arm mode {arm_mode})"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.motion.reset()
        result = super().on_activate(state)
        self._active = True
        self.get_logger().info("active: executing actions")
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop("deactivated")
        self._active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy_interfaces()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._active:
            self._stop("shutting down")
            self._active = False
        if self.profile is not None:
            self._destroy_interfaces()
        return TransitionCallbackReturn.SUCCESS

    def destroy_node(self) -> None:
        """On the way out (Ctrl-C, SIGTERM), the robot's last command is a zero twist and a held arm."""
        if self._active:
            self._stop("shutting down")
            self._active = False
        super().destroy_node()

    def _destroy_interfaces(self) -> None:
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        self.destroy_timer(self._stream_timer)
        for publisher in (self.cmd_vel_pub, self.gripper_pub, self.servo_pub if self.servo else self.arm_pub):
            self.destroy_lifecycle_publisher(publisher)
        self.profile = None
        self.motion = None

    # -- inputs -----------------------------------------------------------------------------------

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def on_joint_states(self, msg: JointState) -> None:
        self.motion.update_joints(msg.name, msg.position, self._now_ns())

    def on_estop(self, msg: Bool) -> None:
        if msg.data and not self._estop:
            self.get_logger().warning("emergency stop: zero twist, arm holds, latched until rt/estop is false")
        elif not msg.data and self._estop:
            self.get_logger().info("emergency stop released")
        self._estop = msg.data
        if self.motion is not None:
            commands = self.motion.set_estop(msg.data, self._now_ns())
            if self._active:
                self._send(commands)

    def on_action(self, msg: RTAction) -> None:
        if not self._active:
            self.get_logger().warning("inactive: ignoring RTAction", throttle_duration_sec=WARN_THROTTLE_S)
            return
        try:
            action = msg_to_action(msg)
        except ValueError as err:
            self._reject(str(err))
            return
        stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        self._send(self.motion.act(action, self._now_ns(), stamp_ns))

    def on_stream(self) -> None:
        if self._active:
            self._send(self.motion.stream(self._now_ns()))

    def _reject(self, reason: str) -> None:
        """Warns about a rejected action, each distinct reason at most once per WARN_THROTTLE_S."""
        now = time.monotonic()
        if now - self._warned.get(reason, -math.inf) >= WARN_THROTTLE_S:
            self._warned[reason] = now
            self.get_logger().warning(f"rejected RTAction: {reason}")

    # -- outputs ----------------------------------------------------------------------------------

    def _stop(self, reason: str) -> None:
        """Zero twist now (no acceleration limit) and the arm held where it is, delivered before this returns: every
        command subscriber acknowledges it, or STOP_DELIVERY_TIMEOUT_S passes (a warning then names the topic)."""
        self._send(self.motion.stop(reason, self._now_ns()))
        deadline = time.monotonic() + STOP_DELIVERY_TIMEOUT_S
        for publisher in (self.cmd_vel_pub, self.servo_pub if self.servo else self.arm_pub):
            left = max(0.0, deadline - time.monotonic())
            if not publisher.wait_for_all_acked(RosDuration(nanoseconds=int(left * 1e9))):
                self.get_logger().warning(
                    f"the stop on {publisher.topic_name} was not acknowledged within {STOP_DELIVERY_TIMEOUT_S} s"
                )

    def _send(self, commands: Commands) -> None:
        """Publishes the core's commands and logs its reasons."""
        if commands.rejected:
            self._reject(commands.rejected)
        if commands.warning:
            self.get_logger().warning(commands.warning, throttle_duration_sec=WARN_THROTTLE_S)
        if commands.stopped:
            self.get_logger().warning(f"stopping: {commands.stopped}", throttle_duration_sec=WARN_THROTTLE_S)
        if commands.arm is not None:
            arm = commands.arm
            self.arm_pub.publish(trajectory(self.profile.arm_joints, arm.positions, arm.duration_s))
        if commands.gripper is not None:
            joints = self.profile.gripper_joints
            self.gripper_pub.publish(trajectory(joints, commands.gripper, self.profile.control_period_s))
        if commands.twist is not None:
            twist = base_twist(commands.twist)
            self.cmd_vel_pub.publish(self._stamped(twist) if self.stamped else twist)
        if commands.servo is not None:
            self.servo_pub.publish(self._stamped(ee_twist(commands.servo)))

    def _stamped(self, twist: Twist) -> TwistStamped:
        """`twist` stamped now, in the robot's base frame."""
        msg = TwistStamped(twist=twist)
        msg.header.stamp, msg.header.frame_id = self.get_clock().now().to_msg(), self.profile.base_frame
        return msg


def base_twist(velocity: np.ndarray) -> Twist:
    """A base velocity [vx, vy, wz] as a Twist."""
    return Twist(linear=Vector3(x=velocity[0], y=velocity[1]), angular=Vector3(z=velocity[2]))


def ee_twist(velocity: np.ndarray) -> Twist:
    """An end-effector twist [vx, vy, vz, wx, wy, wz] as a Twist (MoveIt Servo's delta_twist_cmds, stamped)."""
    linear, angular = (Vector3(x=v[0], y=v[1], z=v[2]) for v in (velocity[:3], velocity[3:]))
    return Twist(linear=linear, angular=angular)


def trajectory(joints: tuple[str, ...], positions: np.ndarray, seconds: float) -> JointTrajectory:
    """A one-point trajectory starting now (zero stamp), arriving after `seconds`."""
    point = JointTrajectoryPoint(positions=[float(p) for p in positions], time_from_start=duration(seconds))
    return JointTrajectory(joint_names=list(joints), points=[point])


def main(args: list[str] | None = None) -> int:
    return run_node(ActionExecutor, args)

"""rt_action_executor: RTAction in, robot commands out (base twist, arm and gripper trajectories), with safety.

A lifecycle node: it commands nothing until activated (`autostart` activates it at start-up). ARM
actions become an end-effector target in the base frame, solved by IK over the URDF's arm joints and
sent as a JointTrajectory that arrives within one control period (or, in `servo` arm mode, a streamed
end-effector twist for MoveIt Servo). BASE actions become a velocity streamed at `stream_rate_hz` for one
control period. Every command is clamped to the robot profile's limits; an e-stop, a TERMINATE or the
action watchdog zero the base and hold the arm.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pinocchio as pin
from ament_index_python.packages import get_package_share_directory
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Twist, TwistStamped, Vector3
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from rt_msgs.msg import RTAction
from rt_policy_node.policies.policy import Action, Mode
from rt_policy_node.robot.kinematics import ArmKinematics
from rt_policy_node.robot.limits import (
    clamp_norm,
    clamp_to_box,
    keep_inside_box,
    limit_joint_step,
    rate_limit,
    rotation_step,
)
from rt_policy_node.robot.profile import RobotProfile, load_profile
from rt_policy_node.ros.conversions import action_is_finite, msg_to_action, seconds_to_stamp
from rt_policy_node.ros.node_main import run_node
from rt_policy_node.ros.params import declare
from rt_policy_node.ros.qos import RELIABLE

WARN_THROTTLE_S = 5.0
ARM_MODES = ("trajectory", "servo")
# Joint states from any robot driver: best effort matches both reliable and best-effort publishers.
JOINT_STATES_QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)


def resolve_package_uri(uri: str) -> str:
    """`package://pkg/rel/path` -> an absolute path in pkg's share directory; other paths unchanged."""
    if not uri.startswith("package://"):
        return uri
    package, _, rest = uri.removeprefix("package://").partition("/")
    return f"{get_package_share_directory(package)}/{rest}"


def duration(seconds: float) -> Duration:
    stamp = seconds_to_stamp(seconds)
    return Duration(sec=stamp.sec, nanosec=stamp.nanosec)


class ActionExecutor(LifecycleNode):
    """Turns RTActions into base, arm and gripper commands for the robot the profile describes."""

    def __init__(self) -> None:
        super().__init__("rt_action_executor")
        declare(
            self,
            "profile",
            "package://rt_bringup/config/profiles/sim.yaml",
            "Robot profile YAML (path or package:// URI): joints, topics, scales, limits",
            read_only=True,
        )
        declare(
            self,
            "arm_mode",
            "trajectory",
            "trajectory: IK -> JointTrajectory; servo: end-effector TwistStamped for MoveIt Servo",
            read_only=True,
        )
        declare(self, "twist_stamped", False, "Publish cmd_vel as TwistStamped (Jazzy+ controllers)", read_only=True)
        declare(
            self,
            "stream_rate_hz",
            20.0,
            "Rate base (and servo) velocities are streamed at",
            low=1.0,
            high=1000.0,
            read_only=True,
        )
        declare(
            self, "action_timeout_s", 1.0, "No RTAction for this long -> zero twist, arm holds", low=0.01, high=60.0
        )
        declare(self, "joint_state_timeout_s", 0.5, "Older joint_states cannot seed IK", low=0.01, high=60.0)
        declare(
            self,
            "max_action_age_s",
            1.0,
            "RTActions stamped longer ago than this, or this far ahead, are rejected; 0: no check (unstamped ones"
            " never are)",
            low=0.0,
            high=3600.0,
        )
        autostart = declare(self, "autostart", False, "Configure and activate at start-up", read_only=True)
        self.profile: RobotProfile | None = None
        self._active = False
        self._warned: dict[str, float] = {}
        # The e-stop outlives lifecycle transitions: a cleanup and reconfigure must not release it.
        self._estop = False
        self.create_subscription(Bool, "rt/estop", self.on_estop, RELIABLE)
        if autostart:
            self.trigger_configure()
            if self.profile is None:
                raise RuntimeError("autostart: configuring failed (see the log above)")
            self.trigger_activate()

    # -- lifecycle --------------------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        arm_mode = self.get_parameter("arm_mode").value
        try:
            if arm_mode not in ARM_MODES:
                raise ValueError(f"arm_mode must be one of {ARM_MODES}, got {arm_mode!r}")
            profile = load_profile(
                resolve_package_uri(self.get_parameter("profile").value), get_package_share_directory
            )
            self.kinematics = ArmKinematics(profile.urdf, profile.arm_joints, profile.base_frame, profile.ee_frame)
        except Exception as err:
            self.get_logger().error(f"cannot configure: {err}")
            return TransitionCallbackReturn.FAILURE
        self.profile = profile
        self.servo = arm_mode == "servo"
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
        self._stream_period = 1.0 / self.get_parameter("stream_rate_hz").value
        self._stream_timer = self.create_timer(self._stream_period, self.on_stream)
        self._reset_motion()
        # Latest finite position of each joint, and when it arrived (node clock, ns).
        self._joints: dict[str, tuple[float, int]] = {}
        self.get_logger().info(
            f"configured for {profile.name} ({len(profile.arm_joints)} arm joints, arm mode {arm_mode})"
        )
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._reset_motion()
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

    # -- inputs -----------------------------------------------------------------------------------

    def on_joint_states(self, msg: JointState) -> None:
        if len(msg.position) != len(msg.name):
            return
        now = self.get_clock().now().nanoseconds
        # A NaN/inf position (a driver before homing) is ignored: the joint goes stale instead of poisoning IK.
        self._joints.update(
            (name, (p, now)) for name, p in zip(msg.name, msg.position, strict=True) if math.isfinite(p)
        )

    def on_estop(self, msg: Bool) -> None:
        if msg.data and not self._estop:
            self._estop = True
            self.get_logger().warning("emergency stop: zero twist, arm holds, latched until rt/estop is false")
            if self._active:
                self._stop("emergency stop")
        elif not msg.data and self._estop:
            self._estop = False
            if self.profile is not None:
                self._reset_motion()
            self.get_logger().info("emergency stop released")

    def on_action(self, msg: RTAction) -> None:
        if not self._active:
            self.get_logger().warning("inactive: ignoring RTAction", throttle_duration_sec=WARN_THROTTLE_S)
            return
        try:
            action = msg_to_action(msg)
        except ValueError as err:
            self._reject(str(err))
            return
        if not action_is_finite(action):
            self._reject("NaN or inf in the action")
            return
        now_ns = self.get_clock().now().nanoseconds
        stale = self._age_problem(msg, now_ns)
        if stale:
            self._reject(stale)
            return
        self._last_action_ns = now_ns
        self._timed_out = False
        if self._estop:
            return
        self._base_target = np.zeros(3)
        if action.mode != Mode.ARM:
            self._servo_until_ns = 0  # a streamed arm step ends with the next non-arm action, not a period later
        if action.mode == Mode.TERMINATE:
            self._twist = np.zeros(3)
        elif action.mode == Mode.BASE:
            self._base_target = self._base_velocity(action)
            self._base_until_ns = self._last_action_ns + int(self.profile.control_period_s * 1e9)
        else:
            self._command_arm(action)
            self._command_gripper(action.gripper_closedness)
        self._publish_twist(self._next_twist(react=True))
        if self.servo and action.mode != Mode.ARM:
            self._publish_servo(np.zeros(6))

    def _age_problem(self, msg: RTAction, now_ns: int) -> str | None:
        """Why an action is too old (a backlog after slow inference) or stamped ahead (a clock jump) to act on."""
        limit_ns = int(self.get_parameter("max_action_age_s").value * 1e9)
        stamp_ns = msg.header.stamp.sec * 10**9 + msg.header.stamp.nanosec
        if limit_ns <= 0 or stamp_ns == 0:
            return None
        if now_ns - stamp_ns > limit_ns:
            return "stamped longer ago than max_action_age_s"
        if stamp_ns - now_ns > limit_ns:
            return "stamped further ahead than max_action_age_s (a clock jump?)"
        return None

    def _reject(self, reason: str) -> None:
        """Warns about a rejected action, each distinct reason at most once per WARN_THROTTLE_S."""
        now = time.monotonic()
        if now - self._warned.get(reason, -math.inf) >= WARN_THROTTLE_S:
            self._warned[reason] = now
            self.get_logger().warning(f"rejected RTAction: {reason}")

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

    def _next_twist(self, react: bool = False) -> np.ndarray:
        """The base target for now, approached under the profile's acceleration limits.

        Acceleration is spent by time: a stream tick spends the time since the last step, a new action (`react`)
        reacts at once by spending up to one stream period ahead, which the following ticks then skip. So an
        action arriving just after a tick never doubles the step; the ramp runs at most one period early.
        """
        now = self.get_clock().now().nanoseconds
        target = self._base_target if now < self._base_until_ns else np.zeros(3)
        limits = self.profile.limits
        period_ns = int(self._stream_period * 1e9)
        until = now + period_ns if react else now
        # Nothing spent yet, or the clock jumped back (a restarted simulation): start afresh.
        fresh = self._ramp_ns is None or self._ramp_ns > until + period_ns
        spent = until - period_ns if fresh else self._ramp_ns
        dt = min(max(0, until - spent), period_ns) / 1e9
        self._ramp_ns = max(spent, until)
        linear = rate_limit(target[:2], self._twist[:2], limits.base_linear_acceleration * dt)
        angular = rate_limit(target[2:], self._twist[2:], limits.base_angular_acceleration * dt)
        self._twist = np.concatenate([linear, angular])
        return self._twist

    def _publish_twist(self, velocity: np.ndarray) -> None:
        twist = Twist(linear=Vector3(x=velocity[0], y=velocity[1]), angular=Vector3(z=velocity[2]))
        if self.stamped:
            msg = TwistStamped(twist=twist)
            msg.header.stamp = self.get_clock().now().to_msg()
            msg.header.frame_id = self.profile.base_frame
            self.cmd_vel_pub.publish(msg)
        else:
            self.cmd_vel_pub.publish(twist)

    def on_stream(self) -> None:
        if not self._active:
            return
        now = self.get_clock().now().nanoseconds
        timeout_ns = int(self.get_parameter("action_timeout_s").value * 1e9)
        if self._last_action_ns is not None and not self._timed_out and now - self._last_action_ns > timeout_ns:
            self._timed_out = True
            self._stop(f"no RTAction for {self.get_parameter('action_timeout_s').value} s")
            return
        if self._estop or self._timed_out:
            self._publish_twist(np.zeros(3))
            if self.servo:
                self._publish_servo(np.zeros(6))
            return
        self._publish_twist(self._next_twist())
        if self.servo:
            self._publish_servo(self._servo_twist() if now < self._servo_until_ns else np.zeros(6))

    # -- arm and gripper --------------------------------------------------------------------------

    def _arm_positions(self) -> np.ndarray | None:
        """Current arm joint positions in profile order, or None when any of them is missing or stale."""
        now = self.get_clock().now().nanoseconds
        timeout_ns = self.get_parameter("joint_state_timeout_s").value * 1e9
        latest = [self._joints.get(name) for name in self.profile.arm_joints]
        if any(entry is None or now - entry[1] > timeout_ns for entry in latest):
            return None
        return np.array([position for position, _ in latest])

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

    def _command_arm(self, action: Action) -> None:
        q = self._arm_positions()
        if q is None:
            self._reject(f"no recent joint_states for {list(self.profile.arm_joints)}; the arm cannot move")
            return
        profile, limits = self.profile, self.profile.limits
        translation, rotation = self._ee_step(action)
        if self.servo:
            self._servo_step = (translation, pin.log3(rotation))
            self._servo_until_ns = self._last_action_ns + int(profile.control_period_s * 1e9)
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
            self.get_logger().warning(
                f"IK target out of reach (pose error {result.error:.3f}): moving towards the nearest reachable pose",
                throttle_duration_sec=WARN_THROTTLE_S,
            )
        self._send_arm(q, result.q)

    def _send_arm(self, q: np.ndarray, q_target: np.ndarray) -> None:
        """Sends `q_target`, shortened to the joint velocity and acceleration limits, over one period."""
        period = self.profile.control_period_s
        limits = self.profile.limits
        velocity_cap = np.minimum(self.kinematics.velocity_limit, limits.joint_velocity)
        now = self._last_action_ns
        recent = now - self._arm_command_ns < 1.5 * period * 1e9
        previous = np.abs(self._arm_velocity) if recent else 0.0
        max_speed = np.minimum(velocity_cap, previous + limits.joint_acceleration * period)
        q_command = limit_joint_step(q, q_target, max_speed * period)
        self._arm_velocity = (q_command - q) / period
        self._arm_command_ns = now
        self.arm_pub.publish(self._trajectory(self.profile.arm_joints, q_command, period))

    def _command_gripper(self, closedness: float) -> None:
        position = self.profile.gripper_position(closedness)
        joints = self.profile.gripper_joints
        self.gripper_pub.publish(
            self._trajectory(joints, np.full(len(joints), position), self.profile.control_period_s)
        )

    def _servo_twist(self) -> np.ndarray:
        """The end-effector twist [v, w] in the base frame for the current ARM step, kept inside the workspace."""
        translation, rotation = self._servo_step
        period = self.profile.control_period_s
        linear = translation / period
        q = self._arm_positions()
        if q is not None:
            limits = self.profile.limits
            position = self.kinematics.fk(q).translation
            linear = keep_inside_box(
                position, linear, np.asarray(limits.workspace_min), np.asarray(limits.workspace_max)
            )
        return np.concatenate([linear, rotation / period])

    def _publish_servo(self, twist: np.ndarray) -> None:
        msg = TwistStamped()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = self.profile.base_frame
        msg.twist.linear = Vector3(x=twist[0], y=twist[1], z=twist[2])
        msg.twist.angular = Vector3(x=twist[3], y=twist[4], z=twist[5])
        self.servo_pub.publish(msg)

    @staticmethod
    def _trajectory(joints: tuple[str, ...], positions: np.ndarray, seconds: float) -> JointTrajectory:
        """A one-point trajectory starting now (zero stamp), arriving after `seconds`."""
        point = JointTrajectoryPoint(positions=[float(p) for p in positions], time_from_start=duration(seconds))
        return JointTrajectory(joint_names=list(joints), points=[point])

    # -- stopping ---------------------------------------------------------------------------------

    def _reset_motion(self) -> None:
        self._twist = np.zeros(3)
        self._ramp_ns: int | None = None
        self._base_target = np.zeros(3)
        self._base_until_ns = 0
        self._servo_until_ns = 0
        self._servo_step = (np.zeros(3), np.zeros(3))
        self._arm_velocity = np.zeros(len(self.profile.arm_joints))
        self._arm_command_ns = 0
        self._last_action_ns: int | None = None
        self._timed_out = False

    def _stop(self, reason: str) -> None:
        """Zero twist now (no acceleration limit) and the arm held where it is."""
        self.get_logger().warning(f"stopping: {reason}", throttle_duration_sec=WARN_THROTTLE_S)
        last_action_ns, timed_out = self._last_action_ns, self._timed_out
        self._reset_motion()
        self._last_action_ns, self._timed_out = last_action_ns, timed_out
        self._publish_twist(np.zeros(3))
        if self.servo:
            self._publish_servo(np.zeros(6))
            return
        q = self._arm_positions()
        if q is not None:
            self.arm_pub.publish(self._trajectory(self.profile.arm_joints, q, self._stream_period))


def main(args: list[str] | None = None) -> int:
    return run_node(ActionExecutor, args)

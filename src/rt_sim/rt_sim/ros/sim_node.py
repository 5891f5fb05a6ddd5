"""rt_sim: the MuJoCo mobile manipulator as a ROS 2 robot, speaking what a real robot or Gazebo speaks.

Publishes camera/image_raw (+ camera/camera_info), joint_states, odom, /clock and sim/success, and when
`scene_camera_rate_hz` > 0 a fixed third-person view on scene_camera/image_raw (for videos); follows
cmd_vel and the arm and gripper controllers' JointTrajectory topics. Services: sim/reset (std_srvs/Trigger:
resets to the `task`, `seed` and optional `colour` parameters, which callers set beforehand) and
sim/task_state (Trigger, privileged state and success as JSON in `message`).

Time: sim time on /clock, paced in real time or in lockstep with the controller (rt_sim.pacing). The robot itself
is rt_sim.sim_robot; this node declares the parameters, converts messages and publishes.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading

import numpy as np
import rclpy
from ament_index_python.packages import get_package_share_directory
from geometry_msgs.msg import Twist, TwistStamped
from nav_msgs.msg import Odometry
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory as JointTrajectoryMsg

from rt_msgs.msg import RTAction
from rt_policy_node.parameters import Parameter
from rt_policy_node.robot.profile import load_profile
from rt_policy_node.ros.conversions import seconds_to_stamp, stamp_to_seconds
from rt_policy_node.ros.params import declare_all
from rt_policy_node.ros.qos import RELIABLE, SENSOR_DATA
from rt_sim.pacing import Lockstep, RealTimePacer
from rt_sim.robot_model import BASE_BODY, CAMERA_BODY, JOINT_NAMES
from rt_sim.scene import SCENE_CAMERA
from rt_sim.sim_robot import CLOCK_RATE_HZ, CLOCK_STEPS, SimRobot, focal_length_px
from rt_sim.simulation import PHYSICS_RATE_HZ, Simulation
from rt_sim.trajectory import JointTrajectory

WARN_THROTTLE_S = 5.0
# How long sim/reset waits (wall s) for the physics loop to publish the new layout's first frame.
RESET_FRAME_TIMEOUT_S = 5.0

PARAMETERS = (
    Parameter("urdf", "", "Robot URDF path; empty = rt_description's rt_mobile_manipulator.urdf", read_only=True),
    Parameter("image_width", 320, "Camera image width (px)", low=16, high=1920, read_only=True),
    Parameter("image_height", 256, "Camera image height (px)", low=16, high=1080, read_only=True),
    Parameter(
        "camera_rate_hz",
        10.0,
        "Camera frames per sim second (60 Hz divided by a whole number)",
        low=0.1,
        high=60.0,
        read_only=True,
    ),
    Parameter(
        "scene_camera_width", 640, "Third-person view width (px), for videos", low=160, high=1280, read_only=True
    ),
    Parameter("scene_camera_height", 360, "Third-person view height (px)", low=90, high=720, read_only=True),
    Parameter(
        "scene_camera_rate_hz",
        0.0,
        "Third-person frames on scene_camera/image_raw per sim second (60 Hz / n); 0 = none (they cost render"
        " time). Settable between episodes",
        low=0.0,
        high=60.0,
    ),
    Parameter(
        "joint_state_rate_hz",
        60.0,
        "joint_states and odom per sim second (60 Hz / n)",
        low=1.0,
        high=60.0,
        read_only=True,
    ),
    Parameter(
        "real_time_factor", 1.0, "Sim seconds per wall second; 0 = lockstep, as fast as possible", low=0.0, high=100.0
    ),
    Parameter(
        "profile",
        "package://rt_description/profiles/sim.yaml",
        "The executor's robot profile (path or package:// URI); lockstep paces by its control period",
        read_only=True,
    ),
    Parameter(
        "lockstep_timeout_s", 1.0, "Lockstep: wall seconds to wait for an action before running on", low=0.01, high=60.0
    ),
    Parameter(
        "cmd_vel_timeout_s", 0.5, "Base stops when cmd_vel is older than this (sim s); 0 = never", low=0.0, high=60.0
    ),
    Parameter("twist_stamped", False, "Subscribe cmd_vel as TwistStamped (Jazzy+ controllers)", read_only=True),
    Parameter("task", "pick_cube", "Task for the next sim/reset (see rt_sim.tasks)"),
    Parameter("seed", 0, "Seed for the next sim/reset: layout and instruction", low=0, high=2**31 - 1),
    Parameter("colour", "", "Target colour for the next sim/reset in the seed's layout; '' = the seed's"),
)


def trajectory_from_msg(msg: JointTrajectoryMsg) -> JointTrajectory:
    """trajectory_msgs/JointTrajectory -> the ROS-free JointTrajectory (velocities only if every point has them)."""
    names = list(msg.joint_names)
    points = msg.points
    velocities = None
    if points and all(len(p.velocities) == len(names) for p in points):
        velocities = np.array([p.velocities for p in points], np.float64)
    stamp = stamp_to_seconds(msg.header.stamp)
    return JointTrajectory(
        joint_names=names,
        times_from_start=np.array([p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in points]),
        positions=np.array([list(p.positions) for p in points], np.float64).reshape(len(points), -1),
        velocities=velocities,
        start_time=stamp if stamp > 0 else None,
    )


def camera_info(width: int, height: int) -> CameraInfo:
    """The head camera's intrinsics: an undistorted pinhole with the robot model's field of view."""
    focal = focal_length_px(height)
    info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
    info.header.frame_id = CAMERA_BODY
    info.d = [0.0] * 5
    info.k = [focal, 0.0, width / 2.0, 0.0, focal, height / 2.0, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [focal, 0.0, width / 2.0, 0.0, 0.0, focal, height / 2.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def image_msg(image: np.ndarray, stamp_s: float, frame_id: str) -> Image:
    msg = Image(height=image.shape[0], width=image.shape[1], encoding="rgb8", step=image.shape[1] * 3)
    msg.header.stamp, msg.header.frame_id = seconds_to_stamp(stamp_s), frame_id
    msg.data = image.tobytes()
    return msg


class SimNode(Node):
    """ROS callbacks run on an executor thread, the physics loop on the thread calling `run`."""

    def __init__(self) -> None:
        super().__init__("rt_sim")
        p = declare_all(self, PARAMETERS)
        profile = load_profile(p["profile"], get_package_share_directory)
        sim = Simulation(p["urdf"] or None, p["image_width"], p["image_height"])
        self.robot = SimRobot(sim, p["camera_rate_hz"], p["joint_state_rate_hz"])
        self.lockstep = Lockstep(CLOCK_STEPS * math.ceil(profile.control_period_s * CLOCK_RATE_HZ - 1e-6))
        self.scene_size = (p["scene_camera_width"], p["scene_camera_height"])
        self.camera_info = camera_info(p["image_width"], p["image_height"])
        self.robot.reset(*self.episode_parameters())

        self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.image_pub = self.create_publisher(Image, "camera/image_raw", SENSOR_DATA)
        self.info_pub = self.create_publisher(CameraInfo, "camera/camera_info", SENSOR_DATA)
        self.scene_pub = self.create_publisher(Image, "scene_camera/image_raw", SENSOR_DATA)
        self.joint_pub = self.create_publisher(JointState, "joint_states", 10)
        self.odom_pub = self.create_publisher(Odometry, "odom", 10)
        self.success_pub = self.create_publisher(Bool, "sim/success", RELIABLE)
        twist_type = TwistStamped if p["twist_stamped"] else Twist
        self.create_subscription(twist_type, "cmd_vel", self.on_cmd_vel, RELIABLE)
        for controller in ("arm", "gripper"):
            self.create_subscription(
                JointTrajectoryMsg,
                f"{controller}_controller/joint_trajectory",
                lambda msg, controller=controller: self.on_trajectory(controller, msg),
                RELIABLE,
            )
        self.create_subscription(
            RTAction, "rt/action", lambda msg: self.lockstep.on_action(msg.mode, self.robot.steps), RELIABLE
        )
        self.create_service(Trigger, "sim/reset", self.on_reset)
        self.create_service(Trigger, "sim/task_state", self.on_task_state)

    def value(self, name: str):
        return self.get_parameter(name).value

    def episode_parameters(self) -> tuple[str, int, str]:
        """The `task`, `seed` and `colour` parameters the next sim/reset lays out."""
        return tuple(self.value(name) for name in ("task", "seed", "colour"))

    # -- services and commands --------------------------------------------------------------------

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        task, seed, colour = self.episode_parameters()
        try:
            episode = self.robot.reset(task, seed, colour)
        except (KeyError, ValueError, RuntimeError) as err:
            response.success, response.message = False, str(err)
            return response
        self.get_logger().info(f"reset: task {task}, seed {seed}: {episode.instruction!r}")
        # The new layout goes on the wire before the caller's instruction: no first action sees the last episode's.
        if not self.robot.layout_shown.wait(RESET_FRAME_TIMEOUT_S):
            self.get_logger().warning(f"no frame of the new layout after {RESET_FRAME_TIMEOUT_S} s")
        response.success, response.message = True, json.dumps(episode.as_json())
        return response

    def on_task_state(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = True, json.dumps(self.robot.task_state())
        return response

    def on_cmd_vel(self, msg: Twist | TwistStamped) -> None:
        twist = msg.twist if isinstance(msg, TwistStamped) else msg
        if not self.robot.command_base(twist.linear.x, twist.linear.y, twist.angular.z):
            self.get_logger().warning("cmd_vel with NaN/inf ignored", throttle_duration_sec=WARN_THROTTLE_S)
            return
        self.lockstep.on_command("cmd_vel")

    def on_trajectory(self, controller: str, msg: JointTrajectoryMsg) -> None:
        try:
            self.robot.follow(controller, trajectory_from_msg(msg))
        except ValueError as err:
            self.get_logger().warning(f"{controller} trajectory rejected: {err}", throttle_duration_sec=WARN_THROTTLE_S)
        self.lockstep.on_command(controller)

    # -- outputs ----------------------------------------------------------------------------------

    def publish_clock(self) -> None:
        self.clock_pub.publish(Clock(clock=seconds_to_stamp(self.robot.time_s)))

    def publish_joint_states(self) -> None:
        reading, stamp = self.robot.read_joints(), seconds_to_stamp(self.robot.time_s)
        joints = JointState(
            name=list(JOINT_NAMES),
            position=reading.positions.tolist(),
            velocity=reading.velocities.tolist(),
            effort=reading.efforts.tolist(),
        )
        joints.header.stamp = stamp
        self.joint_pub.publish(joints)
        (x, y, yaw), (vx, vy, wz) = reading.base_pose, reading.base_twist
        odom = Odometry(child_frame_id=BASE_BODY)
        odom.header.stamp, odom.header.frame_id = stamp, "odom"
        odom.pose.pose.position.x, odom.pose.pose.position.y = x, y
        odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        odom.twist.twist.linear.x, odom.twist.twist.linear.y, odom.twist.twist.angular.z = vx, vy, wz
        self.odom_pub.publish(odom)

    def publish_camera(self) -> None:
        frame = self.robot.camera_frame()
        self.image_pub.publish(image_msg(frame.image, frame.stamp_s, CAMERA_BODY))
        self.camera_info.header.stamp = seconds_to_stamp(frame.stamp_s)
        self.info_pub.publish(self.camera_info)
        self.success_pub.publish(Bool(data=frame.success))
        frame.shown.set()

    def while_paused(self) -> None:
        """In lockstep pauses: a sim/reset's new layout goes out at once, and the best-effort /clock is repeated."""
        if not self.robot.layout_shown.is_set():
            self.publish_joint_states()
            self.publish_camera()
        self.publish_clock()

    # -- physics loop -----------------------------------------------------------------------------

    def run(self) -> None:
        """Steps physics and publishes until ROS shuts down (call from the main thread: it owns the renderer)."""
        pacer = RealTimePacer(self.robot.steps, PHYSICS_RATE_HZ)
        self.publish_joint_states()
        self.publish_camera()
        self.publish_clock()
        while rclpy.ok():
            due = self.robot.tick(self.value("cmd_vel_timeout_s"), self.value("scene_camera_rate_hz"))
            # Sensors before the clock, so a node woken by the clock already has this instant's data.
            if due.joints:
                self.publish_joint_states()
            if due.camera:
                self.publish_camera()
            if due.scene:
                image = self.robot.scene_frame(*self.scene_size)
                self.scene_pub.publish(image_msg(image, self.robot.time_s, SCENE_CAMERA))
            self.publish_clock()
            rate = self.value("real_time_factor")
            if rate == 0.0 and self.lockstep.after_tick(
                self.robot.steps, self.value("lockstep_timeout_s"), self.while_paused, rclpy.ok
            ):
                pacer.restart(self.robot.steps)
                continue
            pacer.pace(self.robot.steps, rate or 1.0)


def _spin(executor: SingleThreadedExecutor) -> None:
    with contextlib.suppress(ExternalShutdownException):
        executor.spin()


def main(args: list[str] | None = None) -> int:
    rclpy.init(args=args)
    try:
        node = SimNode()
    except Exception as err:
        rclpy.logging.get_logger("rt_sim").fatal(f"cannot start: {err}")
        rclpy.try_shutdown()
        return 1
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=_spin, args=(executor,), daemon=True).start()
    try:
        node.run()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        # A publish racing the shutdown on Ctrl-C fails on the closed context: that is a normal exit.
        if rclpy.ok():
            raise
    finally:
        executor.shutdown()
        node.robot.sim.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0

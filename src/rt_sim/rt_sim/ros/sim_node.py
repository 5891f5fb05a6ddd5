"""rt_sim: the MuJoCo mobile manipulator as a ROS 2 robot, speaking what a real robot or Gazebo speaks.

Publishes camera/image_raw (+ camera/camera_info), joint_states, odom, /clock and sim/success, and when
`scene_camera_rate_hz` > 0 a fixed third-person view on scene_camera/image_raw (for videos); follows
cmd_vel and the arm and gripper controllers' JointTrajectory topics. Services: sim/reset (std_srvs/Trigger:
resets to the `task`, `seed` and optional `colour` parameters, which callers set beforehand) and
sim/task_state (Trigger, privileged state and success as JSON in `message`).

Time: sim time on /clock. `real_time_factor` > 0 paces the simulation against the wall clock; 0 runs in
lockstep with the controller: as fast as the CPU allows while RTActions flow, pausing one control period (the
robot profile's) after each action until the next action and the executor's commands for it have arrived, so
neither slow inference nor a slow machine changes what happens in sim time. With no actions, real time.
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time

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
from rt_policy_node.policies.policy import Mode
from rt_policy_node.robot.profile import load_profile
from rt_policy_node.ros.conversions import seconds_to_stamp, stamp_to_seconds
from rt_policy_node.ros.executor_node import resolve_package_uri
from rt_policy_node.ros.params import declare
from rt_policy_node.ros.qos import RELIABLE, SENSOR_DATA
from rt_sim.robot_model import BASE_BODY, CAMERA_BODY, CAMERA_FOVY_DEG, JOINT_NAMES
from rt_sim.scene import SCENE_CAMERA
from rt_sim.simulation import PHYSICS_RATE_HZ, Simulation
from rt_sim.tasks import Episode, Task, make_task
from rt_sim.trajectory import JointTrajectory

# Physics steps between /clock messages; sensors publish on these ticks too.
CLOCK_STEPS = 10
CLOCK_RATE_HZ = PHYSICS_RATE_HZ // CLOCK_STEPS
WARN_THROTTLE_S = 5.0
# While paused in lockstep, /clock is repeated this often (wall s): it is best effort and may be lost.
CLOCK_REPEAT_S = 0.05
# How long sim/reset waits (wall s) for the physics loop to publish the new layout's first frame.
RESET_FRAME_TIMEOUT_S = 5.0
# In real-time pacing, a lag beyond this (wall s) is dropped rather than caught up in a burst.
MAX_PACING_LAG_S = 0.25


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


class _Lockstep:
    """What the physics loop waits for in lockstep: the next RTAction and the executor's commands for it."""

    def __init__(self) -> None:
        self.condition = threading.Condition()
        self.actions = 0  # RTActions received so far
        self.handled = 0  # ... of which the physics loop has synchronised on
        self.action_step = 0  # physics step at which the newest one arrived
        self.mode = Mode.TERMINATE
        self.commands: set[str] = set()  # commands received since the newest action

    def on_action(self, mode: int, step: int) -> None:
        with self.condition:
            self.actions += 1
            self.action_step = step
            self.mode = Mode(mode) if mode in (0, 1, 2) else Mode.TERMINATE
            self.commands = set()
            self.condition.notify_all()

    def on_command(self, kind: str) -> None:
        with self.condition:
            self.commands.add(kind)
            self.condition.notify_all()

    def commands_complete(self) -> bool:
        needed = {"cmd_vel", "arm", "gripper"} if self.mode == Mode.ARM else {"cmd_vel"}
        return needed <= self.commands


class SimNode(Node):
    """Owns the Simulation; ROS callbacks run on an executor thread, physics on the thread calling `run`."""

    def __init__(self) -> None:
        super().__init__("rt_sim")
        declare(
            self, "urdf", "", "Robot URDF path; empty = rt_description's rt_mobile_manipulator.urdf", read_only=True
        )
        width = declare(self, "image_width", 320, "Camera image width (px)", low=16, high=1920, read_only=True)
        height = declare(self, "image_height", 256, "Camera image height (px)", low=16, high=1080, read_only=True)
        declare(
            self,
            "camera_rate_hz",
            10.0,
            "Camera frames per sim second (60 Hz divided by a whole number)",
            low=0.1,
            high=60.0,
            read_only=True,
        )
        scene_width = declare(
            self,
            "scene_camera_width",
            640,
            "Third-person view width (px), for videos",
            low=160,
            high=1280,
            read_only=True,
        )
        scene_height = declare(
            self, "scene_camera_height", 360, "Third-person view height (px)", low=90, high=720, read_only=True
        )
        declare(
            self,
            "scene_camera_rate_hz",
            0.0,
            "Third-person frames on scene_camera/image_raw per sim second (60 Hz / n); 0 = none (they cost render"
            " time). Settable between episodes",
            low=0.0,
            high=60.0,
        )
        declare(
            self,
            "joint_state_rate_hz",
            60.0,
            "joint_states and odom per sim second (60 Hz / n)",
            low=1.0,
            high=60.0,
            read_only=True,
        )
        declare(
            self,
            "real_time_factor",
            1.0,
            "Sim seconds per wall second; 0 = lockstep, as fast as possible",
            low=0.0,
            high=100.0,
        )
        profile_uri = declare(
            self,
            "profile",
            "package://rt_description/profiles/sim.yaml",
            "The executor's robot profile (path or package:// URI); lockstep paces by its control period",
            read_only=True,
        )
        declare(
            self,
            "lockstep_timeout_s",
            1.0,
            "Lockstep: wall seconds to wait for an action before running on",
            low=0.01,
            high=60.0,
        )
        declare(
            self,
            "cmd_vel_timeout_s",
            0.5,
            "Base stops when cmd_vel is older than this (sim s); 0 = never",
            low=0.0,
            high=60.0,
        )
        declare(self, "twist_stamped", False, "Subscribe cmd_vel as TwistStamped (Jazzy+ controllers)", read_only=True)
        declare(self, "task", "pick_cube", "Task for the next sim/reset (see rt_sim.tasks)")
        declare(self, "seed", 0, "Seed for the next sim/reset: layout and instruction", low=0, high=2**31 - 1)
        declare(self, "colour", "", "Target colour for the next sim/reset in the seed's layout; '' = the seed's")

        self.control_period_s = load_profile(
            resolve_package_uri(profile_uri), get_package_share_directory
        ).control_period_s
        urdf = self.get_parameter("urdf").value or None
        self.sim = Simulation(urdf, width, height)
        self.lock = threading.Lock()
        self.lockstep = _Lockstep()
        self.steps = 0  # physics steps since start; sim time = steps / PHYSICS_RATE_HZ, monotonic across resets
        self.cmd_vel_step: int | None = None  # physics step of the newest cmd_vel while the base is moving
        self.camera_stamp = 0.0
        self.success = False
        self.reset(*self.episode_parameters())

        self.clock_pub = self.create_publisher(Clock, "/clock", 10)
        self.image_pub = self.create_publisher(Image, "camera/image_raw", SENSOR_DATA)
        self.info_pub = self.create_publisher(CameraInfo, "camera/camera_info", SENSOR_DATA)
        self.scene_pub = self.create_publisher(Image, "scene_camera/image_raw", SENSOR_DATA)
        self.scene_size = (scene_width, scene_height)
        self.joint_pub = self.create_publisher(JointState, "joint_states", 10)
        self.odom_pub = self.create_publisher(Odometry, "odom", 10)
        self.success_pub = self.create_publisher(Bool, "sim/success", RELIABLE)
        twist_type = TwistStamped if self.get_parameter("twist_stamped").value else Twist
        self.create_subscription(twist_type, "cmd_vel", self.on_cmd_vel, RELIABLE)
        self.create_subscription(JointTrajectoryMsg, "arm_controller/joint_trajectory", self.on_arm, RELIABLE)
        self.create_subscription(JointTrajectoryMsg, "gripper_controller/joint_trajectory", self.on_gripper, RELIABLE)
        self.create_subscription(RTAction, "rt/action", self.on_action, RELIABLE)
        self.create_service(Trigger, "sim/reset", self.on_reset)
        self.create_service(Trigger, "sim/task_state", self.on_task_state)
        self.camera_info = self._camera_info(width, height)

    # -- episodes ---------------------------------------------------------------------------------

    def episode_parameters(self) -> tuple[str, int, str]:
        """The `task`, `seed` and `colour` parameters the next sim/reset lays out."""
        return tuple(self.get_parameter(name).value for name in ("task", "seed", "colour"))

    def reset(self, task_name: str, seed: int, colour: str = "") -> Episode:
        """Lays out `task_name`'s episode for `seed` (and `colour`); KeyError/ValueError for an unknown one."""
        task = make_task(task_name)
        episode = task.episode(seed, colour)
        with self.lock:
            self.sim.reset(episode.layout)
            self.task: Task = task
            self.episode: Episode = episode
            self.layout_shown = threading.Event()  # set once a frame of this layout is published
            self.success = task.success(self.sim.observe(), episode.params)
        return episode

    def task_state(self) -> dict:
        """Privileged state, the episode and its success, as JSON-able data."""
        with self.lock:
            state = self.sim.observe()
            task, episode = self.task, self.episode
        state.update(
            task=episode.task,
            seed=episode.seed,
            instruction=episode.instruction,
            params=episode.params,
            max_steps=task.max_steps,
            success=task.success(state, episode.params),
            camera_stamp=self.camera_stamp,
        )
        return state

    def on_reset(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        task, seed, colour = self.episode_parameters()
        try:
            episode = self.reset(task, seed, colour)
        except (KeyError, ValueError, RuntimeError) as err:
            response.success, response.message = False, str(err)
            return response
        self.get_logger().info(f"reset: task {task}, seed {seed}: {episode.instruction!r}")
        # The new layout goes on the wire before the caller's instruction: no first action sees the last episode's.
        if not self.layout_shown.wait(RESET_FRAME_TIMEOUT_S):
            self.get_logger().warning(f"no frame of the new layout after {RESET_FRAME_TIMEOUT_S} s")
        response.success = True
        response.message = json.dumps(episode.as_json())
        return response

    def on_task_state(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success = True
        response.message = json.dumps(self.task_state())
        return response

    # -- commands ---------------------------------------------------------------------------------

    def on_cmd_vel(self, msg: Twist | TwistStamped) -> None:
        twist = msg.twist if isinstance(msg, TwistStamped) else msg
        values = (twist.linear.x, twist.linear.y, twist.angular.z)
        if not all(math.isfinite(v) for v in values):
            self.get_logger().warning("cmd_vel with NaN/inf ignored", throttle_duration_sec=WARN_THROTTLE_S)
            return
        with self.lock:
            self.sim.set_base_twist(*values)
            self.cmd_vel_step = self.steps
        self.lockstep.on_command("cmd_vel")

    def on_arm(self, msg: JointTrajectoryMsg) -> None:
        self._follow(msg, self.sim.follow_arm, "arm")

    def on_gripper(self, msg: JointTrajectoryMsg) -> None:
        self._follow(msg, self.sim.follow_gripper, "gripper")

    def _follow(self, msg: JointTrajectoryMsg, follow, kind: str) -> None:
        try:
            trajectory = trajectory_from_msg(msg)
            with self.lock:
                follow(trajectory)
        except ValueError as err:
            self.get_logger().warning(f"{kind} trajectory rejected: {err}", throttle_duration_sec=WARN_THROTTLE_S)
        self.lockstep.on_command(kind)

    def on_action(self, msg: RTAction) -> None:
        self.lockstep.on_action(msg.mode, self.steps)

    # -- outputs ----------------------------------------------------------------------------------

    def _camera_info(self, width: int, height: int) -> CameraInfo:
        focal = height / 2.0 / math.tan(math.radians(CAMERA_FOVY_DEG) / 2.0)
        info = CameraInfo(width=width, height=height, distortion_model="plumb_bob")
        info.header.frame_id = CAMERA_BODY
        info.d = [0.0] * 5
        info.k = [focal, 0.0, width / 2.0, 0.0, focal, height / 2.0, 0.0, 0.0, 1.0]
        info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
        info.p = [focal, 0.0, width / 2.0, 0.0, 0.0, focal, height / 2.0, 0.0, 0.0, 0.0, 1.0, 0.0]
        return info

    def publish_clock(self) -> None:
        self.clock_pub.publish(Clock(clock=seconds_to_stamp(self.steps / PHYSICS_RATE_HZ)))

    def publish_joint_states(self) -> None:
        with self.lock:
            position, velocity, effort = (
                self.sim.joint_positions(),
                self.sim.joint_velocities(),
                self.sim.joint_efforts(),
            )
            x, y, yaw = self.sim.base_pose()
            vx, vy, wz = self.sim.base_twist()
        stamp = seconds_to_stamp(self.steps / PHYSICS_RATE_HZ)
        joints = JointState(
            name=list(JOINT_NAMES), position=position.tolist(), velocity=velocity.tolist(), effort=effort.tolist()
        )
        joints.header.stamp = stamp
        self.joint_pub.publish(joints)
        odom = Odometry(child_frame_id=BASE_BODY)
        odom.header.stamp, odom.header.frame_id = stamp, "odom"
        odom.pose.pose.position.x, odom.pose.pose.position.y = x, y
        odom.pose.pose.orientation.z, odom.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
        odom.twist.twist.linear.x, odom.twist.twist.linear.y, odom.twist.twist.angular.z = vx, vy, wz
        self.odom_pub.publish(odom)

    def publish_camera(self) -> None:
        with self.lock:
            image = self.sim.render()
            state = self.sim.observe()
            self.success = self.task.success(state, self.episode.params)
            shown = self.layout_shown
        self.camera_stamp = self.steps / PHYSICS_RATE_HZ
        stamp = seconds_to_stamp(self.camera_stamp)
        msg = Image(height=image.shape[0], width=image.shape[1], encoding="rgb8", step=image.shape[1] * 3)
        msg.header.stamp, msg.header.frame_id = stamp, CAMERA_BODY
        msg.data = image.tobytes()
        self.image_pub.publish(msg)
        self.camera_info.header.stamp = stamp
        self.info_pub.publish(self.camera_info)
        self.success_pub.publish(Bool(data=self.success))
        shown.set()

    def publish_scene_camera(self) -> None:
        with self.lock:
            image = self.sim.render_scene(*self.scene_size)
        msg = Image(height=image.shape[0], width=image.shape[1], encoding="rgb8", step=image.shape[1] * 3)
        msg.header.stamp, msg.header.frame_id = seconds_to_stamp(self.steps / PHYSICS_RATE_HZ), SCENE_CAMERA
        msg.data = image.tobytes()
        self.scene_pub.publish(msg)

    def show_new_layout(self) -> None:
        """Publishes the sensors of a sim/reset's new layout while paused (in the physics loop's thread: it owns
        the renderer)."""
        if not self.layout_shown.is_set():
            self.publish_joint_states()
            self.publish_camera()

    # -- physics loop -----------------------------------------------------------------------------

    def run(self) -> None:
        """Steps physics and publishes until ROS shuts down (call from the main thread)."""
        camera_every = max(1, round(CLOCK_RATE_HZ / self.get_parameter("camera_rate_hz").value))
        joints_every = max(1, round(CLOCK_RATE_HZ / self.get_parameter("joint_state_rate_hz").value))
        period_steps = CLOCK_STEPS * math.ceil(self.control_period_s * CLOCK_RATE_HZ - 1e-6)
        pace_wall, pace_steps = time.monotonic(), self.steps
        engaged, pause_step = False, 0
        self.publish_joint_states()
        self.publish_camera()
        self.publish_clock()
        while rclpy.ok():
            with self.lock:
                self.sim.step(CLOCK_STEPS)
                self.steps += CLOCK_STEPS
                self._expire_cmd_vel()
            tick = self.steps // CLOCK_STEPS
            new_layout = not self.layout_shown.is_set()
            # Sensors before the clock, so a node woken by the clock already has this instant's data.
            if new_layout or tick % joints_every == 0:
                self.publish_joint_states()
            if new_layout or tick % camera_every == 0:
                self.publish_camera()
            scene_rate = self.get_parameter("scene_camera_rate_hz").value
            if scene_rate > 0.0 and tick % max(1, round(CLOCK_RATE_HZ / scene_rate)) == 0:
                self.publish_scene_camera()
            self.publish_clock()

            rate = self.get_parameter("real_time_factor").value
            if rate == 0.0:
                lockstep = self.lockstep
                if lockstep.actions > lockstep.handled:
                    # An action arrived while running: wait for its commands, then pace from it.
                    self._await_controller(new_action=False)
                    engaged, pause_step = lockstep.mode != Mode.TERMINATE, lockstep.action_step + period_steps
                elif engaged and self.steps >= pause_step:
                    engaged = self._await_controller(new_action=True)
                    pause_step = self.steps + period_steps
                if engaged:
                    pace_wall, pace_steps = time.monotonic(), self.steps
                    continue
                rate = 1.0
            pace_wall, pace_steps = self._pace(rate, pace_wall, pace_steps)

    def _expire_cmd_vel(self) -> None:
        """Like a base controller's command timeout: a stale cmd_vel stops the base (call with the lock held)."""
        timeout_steps = self.get_parameter("cmd_vel_timeout_s").value * PHYSICS_RATE_HZ
        if self.cmd_vel_step is not None and timeout_steps > 0 and self.steps - self.cmd_vel_step > timeout_steps:
            self.sim.set_base_twist(0.0, 0.0, 0.0)
            self.cmd_vel_step = None

    def _pace(self, rate: float, wall0: float, steps0: int) -> tuple[float, int]:
        """Sleeps so that sim time advances `rate` times as fast as wall time; returns the pacing reference."""
        ahead = wall0 + (self.steps - steps0) / PHYSICS_RATE_HZ / rate - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
        elif ahead < -MAX_PACING_LAG_S:
            return time.monotonic(), self.steps
        return wall0, steps0

    def _await_controller(self, new_action: bool) -> bool:
        """Blocks (wall clock, bounded) for the next action if `new_action`, then for the executor's commands."""
        lockstep = self.lockstep
        deadline = time.monotonic() + self.get_parameter("lockstep_timeout_s").value
        with lockstep.condition:
            for done in (
                (lambda: lockstep.actions > lockstep.handled) if new_action else None,
                lockstep.commands_complete,
            ):
                while done is not None and not done() and rclpy.ok():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        lockstep.handled = lockstep.actions
                        return False
                    lockstep.condition.wait(min(remaining, CLOCK_REPEAT_S))
                    self.show_new_layout()
                    self.publish_clock()
            lockstep.handled = lockstep.actions
            return lockstep.mode != Mode.TERMINATE


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
        node.sim.close()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0

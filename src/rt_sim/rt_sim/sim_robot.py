"""The simulated robot on sim time: the task's episodes, the controllers' commands, physics in clock ticks.

ROS-free: rt_sim's node converts messages and publishes what `tick` says is due; this holds the state, behind one
lock, since commands and resets arrive on another thread than the one stepping the physics.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from rt_sim.robot_model import CAMERA_FOVY_DEG
from rt_sim.simulation import PHYSICS_RATE_HZ, Simulation
from rt_sim.tasks import Episode, Task, make_task
from rt_sim.trajectory import JointTrajectory

# Physics steps per clock tick; sensors are published on these ticks too.
CLOCK_STEPS = 10
CLOCK_RATE_HZ = PHYSICS_RATE_HZ // CLOCK_STEPS


def ticks_between(rate_hz: float) -> int:
    """Clock ticks between two publications at `rate_hz` (sim time): the clock rate divided by a whole number."""
    return max(1, round(CLOCK_RATE_HZ / rate_hz))


def focal_length_px(height: int) -> float:
    """The camera's focal length in pixels for an image `height` pixels tall (square pixels)."""
    return height / 2.0 / math.tan(math.radians(CAMERA_FOVY_DEG) / 2.0)


@dataclass(frozen=True)
class Due:
    """What a clock tick publishes besides /clock."""

    joints: bool
    camera: bool
    scene: bool


@dataclass(frozen=True)
class JointReading:
    """Joints and base as a robot driver reports them."""

    positions: np.ndarray
    velocities: np.ndarray
    efforts: np.ndarray
    base_pose: tuple[float, float, float]  # x, y, yaw in the odom frame
    base_twist: tuple[float, float, float]  # vx, vy, wz in the base frame


@dataclass(frozen=True)
class CameraFrame:
    image: np.ndarray
    stamp_s: float  # sim time
    success: bool  # the task's success in this frame's state
    shown: threading.Event  # the layout the frame shows; set it once the frame is out


class SimRobot:
    """Owns the Simulation; `tick` steps it, the other methods may be called from any thread."""

    def __init__(self, sim: Simulation, camera_rate_hz: float, joint_state_rate_hz: float) -> None:
        self.sim = sim
        self.lock = threading.Lock()
        self.camera_every = ticks_between(camera_rate_hz)
        self.joints_every = ticks_between(joint_state_rate_hz)
        self.steps = 0  # physics steps since start; sim time = steps / PHYSICS_RATE_HZ, monotonic across resets
        self.cmd_vel_step: int | None = None  # physics step of the newest base command while the base is moving
        self.camera_stamp = 0.0  # sim time of the newest camera frame

    @property
    def time_s(self) -> float:
        return self.steps / PHYSICS_RATE_HZ

    # -- episodes ---------------------------------------------------------------------------------

    def reset(self, task_name: str, seed: int, colour: str = "") -> Episode:
        """Lays out `task_name`'s episode for `seed` (and `colour`); KeyError/ValueError for an unknown one."""
        task = make_task(task_name)
        episode = task.episode(seed, colour)
        with self.lock:
            self.sim.reset(episode.layout)
            self.task: Task = task
            self.episode: Episode = episode
            self.layout_shown = threading.Event()  # set once a frame of this layout is published
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

    # -- commands ---------------------------------------------------------------------------------

    def command_base(self, vx: float, vy: float, wz: float) -> bool:
        """Sets the base velocity until the next command or its timeout; False (ignored) for a NaN or inf."""
        if not all(math.isfinite(v) for v in (vx, vy, wz)):
            return False
        with self.lock:
            self.sim.set_base_twist(vx, vy, wz)
            self.cmd_vel_step = self.steps
        return True

    def follow(self, controller: str, trajectory: JointTrajectory) -> None:
        """Hands `trajectory` to the `arm` or `gripper` controller; ValueError for one it cannot follow."""
        follow = {"arm": self.sim.follow_arm, "gripper": self.sim.follow_gripper}[controller]
        with self.lock:
            follow(trajectory)

    # -- time -------------------------------------------------------------------------------------

    def tick(self, cmd_vel_timeout_s: float, scene_rate_hz: float = 0.0) -> Due:
        """Steps physics one clock tick; a base command older than `cmd_vel_timeout_s` (0 = never) stops the base,
        as a base controller's command timeout does. Says which sensors are due."""
        with self.lock:
            self.sim.step(CLOCK_STEPS)
            self.steps += CLOCK_STEPS
            timeout_steps = cmd_vel_timeout_s * PHYSICS_RATE_HZ
            if self.cmd_vel_step is not None and timeout_steps > 0 and self.steps - self.cmd_vel_step > timeout_steps:
                self.sim.set_base_twist(0.0, 0.0, 0.0)
                self.cmd_vel_step = None
        tick = self.steps // CLOCK_STEPS
        new_layout = not self.layout_shown.is_set()
        return Due(
            joints=new_layout or tick % self.joints_every == 0,
            camera=new_layout or tick % self.camera_every == 0,
            scene=scene_rate_hz > 0.0 and tick % ticks_between(scene_rate_hz) == 0,
        )

    # -- sensors ----------------------------------------------------------------------------------

    def read_joints(self) -> JointReading:
        with self.lock:
            return JointReading(
                self.sim.joint_positions(),
                self.sim.joint_velocities(),
                self.sim.joint_efforts(),
                self.sim.base_pose(),
                self.sim.base_twist(),
            )

    def camera_frame(self) -> CameraFrame:
        """Renders the robot's camera (call from the thread that steps: it owns the renderer) and scores the task."""
        with self.lock:
            image = self.sim.render()
            success = self.task.success(self.sim.observe(), self.episode.params)
            self.camera_stamp = self.time_s
            return CameraFrame(image, self.camera_stamp, success, self.layout_shown)

    def scene_frame(self, width: int, height: int) -> np.ndarray:
        """The fixed third-person view (same thread rule as `camera_frame`)."""
        with self.lock:
            return self.sim.render_scene(width, height)

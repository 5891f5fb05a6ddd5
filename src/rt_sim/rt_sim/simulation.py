"""The robot in its world, stepped by MuJoCo and commanded the way ros2_control commands a robot.

The base follows a twist in its own frame (like a holonomic drive's velocity controller), the arm and
the gripper follow joint trajectories (like joint_trajectory_controller). No ROS here: the sim node
wraps this class, tests and tools use it directly.
"""

from __future__ import annotations

import math
from pathlib import Path

import mujoco
import numpy as np

from rt_sim.geometry import yaw_of_quaternion
from rt_sim.rendering import CameraRenderer
from rt_sim.robot_model import (
    ARM_JOINTS,
    BASE_BODY,
    BASE_JOINTS,
    CAMERA_NAME,
    EE_BODY,
    FINGER_BODIES,
    GRIPPER_JOINT,
    GRIPPER_MIMIC_JOINT,
    JOINT_NAMES,
    load_robot_spec,
)
from rt_sim.scene import (
    COLOURS,
    SCENE_CAMERA,
    Layout,
    add_scene,
    cube_name,
    marker_name,
    place_cube,
    place_marker,
)
from rt_sim.trajectory import JointTrajectory, TrajectoryFollower

GRIPPER_OPEN = 0.04
# Physics steps per second: 1/600 s divides the camera period (0.1 s), the control period (1/3 s) and
# the /clock period of the sim node (1/60 s), so all of them fall exactly on physics steps.
PHYSICS_RATE_HZ = 600
# The largest third-person view `render_scene` draws.
SCENE_VIEW_MAX = (1280, 720)


class Simulation:
    """MuJoCo model + data of the robot and the scene, with controller-like command inputs."""

    def __init__(self, urdf: str | Path | None = None, image_width: int = 320, image_height: int = 256) -> None:
        spec = load_robot_spec(urdf)
        add_scene(spec)
        spec.option.timestep = 1.0 / PHYSICS_RATE_HZ
        spec.visual.global_.offwidth = max(image_width, SCENE_VIEW_MAX[0])
        spec.visual.global_.offheight = max(image_height, SCENE_VIEW_MAX[1])
        self.model = spec.compile()
        self.data = mujoco.MjData(self.model)
        self.image_width, self.image_height = image_width, image_height
        self._qpos = np.array([self.model.joint(n).qposadr[0] for n in JOINT_NAMES])
        self._qvel = np.array([self.model.joint(n).dofadr[0] for n in JOINT_NAMES])
        self._index = {name: i for i, name in enumerate(JOINT_NAMES)}
        self._base_actuators = [self.model.actuator(n).id for n in BASE_JOINTS]
        self._arm_actuators = [self.model.actuator(n).id for n in ARM_JOINTS]
        self._gripper_actuator = self.model.actuator(GRIPPER_JOINT).id
        self._base_body = self.model.body(BASE_BODY).id
        self._ee_body = self.model.body(EE_BODY).id
        self._finger_geoms = {
            g
            for b in FINGER_BODIES
            for g in range(self.model.ngeom)
            if self.model.geom_bodyid[g] == self.model.body(b).id
        }
        self.arm = TrajectoryFollower(ARM_JOINTS, np.zeros(len(ARM_JOINTS)))
        self.gripper = TrajectoryFollower((GRIPPER_JOINT,), np.array([GRIPPER_OPEN]))
        self._twist = np.zeros(3)
        self._renderer: CameraRenderer | None = None
        self._scene_renderer: CameraRenderer | None = None

    @property
    def time(self) -> float:
        return float(self.data.time)

    @property
    def timestep(self) -> float:
        return float(self.model.opt.timestep)

    def reset(self, layout: Layout) -> None:
        """Puts robot, cubes and markers where `layout` says, at rest, with no command pending; time goes on."""
        now = self.data.time
        mujoco.mj_resetData(self.model, self.data)
        self.data.time = now
        x, y, yaw = layout.base_pose
        self._set_joints(BASE_JOINTS, (x, y, yaw))
        self._set_joints(ARM_JOINTS, layout.arm_joints)
        self._set_joints((GRIPPER_JOINT, GRIPPER_MIMIC_JOINT), (GRIPPER_OPEN, GRIPPER_OPEN))
        for colour, (cx, cy, cyaw) in layout.cubes.items():
            place_cube(self.model, self.data, colour, cx, cy, cyaw)
        for colour, (mx, my) in layout.markers.items():
            place_marker(self.model, self.data, colour, mx, my)
        self.arm.hold(np.asarray(layout.arm_joints))
        self.gripper.hold(np.array([GRIPPER_OPEN]))
        self._twist[:] = 0.0
        mujoco.mj_forward(self.model, self.data)

    def _set_joints(self, names: tuple[str, ...], values) -> None:
        for name, value in zip(names, values, strict=True):
            self.data.qpos[self._qpos[self._index[name]]] = value

    # ---- commands -------------------------------------------------------------------------------

    def set_base_twist(self, vx: float, vy: float, wz: float) -> None:
        """Base velocity in base_link (m/s forward, m/s left, rad/s counter-clockwise), held until changed."""
        self._twist[:] = (vx, vy, wz)

    def follow_arm(self, trajectory: JointTrajectory) -> None:
        self.arm.follow(trajectory, self.time)

    def follow_gripper(self, trajectory: JointTrajectory) -> None:
        self.gripper.follow(trajectory, self.time)

    def step(self, steps: int = 1) -> None:
        """Advances physics by `steps` timesteps, servoing every joint to its current set point."""
        ctrl = self.data.ctrl
        for _ in range(steps):
            t = self.data.time
            ctrl[self._arm_actuators] = self.arm.sample(t)[0]
            ctrl[self._gripper_actuator] = self.gripper.sample(t)[0][0]
            yaw = self.data.qpos[self._qpos[self._index["base_yaw_joint"]]]
            c, s = math.cos(yaw), math.sin(yaw)
            vx, vy, wz = self._twist
            ctrl[self._base_actuators] = (c * vx - s * vy, s * vx + c * vy, wz)
            mujoco.mj_step(self.model, self.data)

    # ---- state ----------------------------------------------------------------------------------

    def joint_positions(self) -> np.ndarray:
        """Positions of JOINT_NAMES (rad or m)."""
        return self.data.qpos[self._qpos].copy()

    def joint_velocities(self) -> np.ndarray:
        return self.data.qvel[self._qvel].copy()

    def joint_efforts(self) -> np.ndarray:
        """Actuator torques/forces on JOINT_NAMES (N m or N)."""
        return self.data.qfrc_actuator[self._qvel].copy()

    def base_pose(self) -> tuple[float, float, float]:
        """(x, y, yaw) of base_link in odom."""
        q = self.data.qpos[self._qpos[:3]]
        return float(q[0]), float(q[1]), float(q[2])

    def base_twist(self) -> tuple[float, float, float]:
        """Measured (vx, vy, wz) of base_link in its own frame."""
        vxw, vyw, wz = self.data.qvel[self._qvel[:3]]
        yaw = self.base_pose()[2]
        c, s = math.cos(yaw), math.sin(yaw)
        return float(c * vxw + s * vyw), float(-s * vxw + c * vyw), float(wz)

    def ee_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """(position [3], rotation [3, 3]) of ee_link in base_link."""
        base_rot = self.data.xmat[self._base_body].reshape(3, 3)
        base_pos = self.data.xpos[self._base_body]
        rot = base_rot.T @ self.data.xmat[self._ee_body].reshape(3, 3)
        return base_rot.T @ (self.data.xpos[self._ee_body] - base_pos), rot

    def gripper_opening(self) -> float:
        """Left finger position: 0 closed, 0.04 open."""
        return float(self.data.qpos[self._qpos[self._index[GRIPPER_JOINT]]])

    def cube_pose(self, colour: str) -> tuple[np.ndarray, float]:
        """(position [3] in odom, yaw) of a cube."""
        body = self.model.body(cube_name(colour)).id
        return self.data.xpos[body].copy(), yaw_of_quaternion(self.data.xquat[body])

    def marker_position(self, colour: str) -> np.ndarray:
        return self.data.mocap_pos[self.model.body(marker_name(colour)).mocapid[0]][:2].copy()

    def fingers_touching(self, colour: str) -> int:
        """How many fingers touch the cube (0, 1 or 2)."""
        cube_geom = self.model.geom(cube_name(colour)).id
        touching = set()
        for contact in self.data.contact[: self.data.ncon]:
            pair = {int(contact.geom1), int(contact.geom2)}
            if cube_geom in pair:
                touching |= pair & self._finger_geoms
        return len({int(self.model.geom_bodyid[g]) for g in touching})

    def observe(self) -> dict:
        """Privileged state as plain JSON-able data: what success detectors and the scripted expert read."""
        ee_position, ee_rotation = self.ee_pose()
        cubes = {}
        for colour in COLOURS:
            position, yaw = self.cube_pose(colour)
            cubes[colour] = {"position": position.tolist(), "yaw": yaw, "fingers": self.fingers_touching(colour)}
        return {
            "time": self.time,
            "base": list(self.base_pose()),
            "ee_position": ee_position.tolist(),
            "ee_rotation": ee_rotation.tolist(),
            "gripper": self.gripper_opening(),
            "cubes": cubes,
            "markers": {colour: self.marker_position(colour).tolist() for colour in COLOURS},
        }

    def render(self) -> np.ndarray:
        """The head camera's view as an HxWx3 uint8 RGB image (the GL context is created on first use)."""
        if self._renderer is None:
            self._renderer = CameraRenderer(self.model, CAMERA_NAME, self.image_width, self.image_height)
        return self._renderer.render(self.data)

    def render_scene(self, width: int = 640, height: int = 360) -> np.ndarray:
        """The fixed third-person view (scene.SCENE_CAMERA) as an HxWx3 uint8 RGB image, for videos."""
        renderer = self._scene_renderer
        if renderer is None or (renderer.width, renderer.height) != (width, height):
            if renderer is not None:
                renderer.close()
            self._scene_renderer = renderer = CameraRenderer(self.model, SCENE_CAMERA, width, height)
        return renderer.render(self.data)

    def close(self) -> None:
        for renderer in (self._renderer, self._scene_renderer):
            if renderer is not None:
                renderer.close()
        self._renderer = self._scene_renderer = None

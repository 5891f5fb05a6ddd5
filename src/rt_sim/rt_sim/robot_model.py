"""The robot in MuJoCo: rt_description's URDF compiled with MjSpec, plus the actuators, camera and contact setup.

The URDF is the only description of the robot; this module adds what a simulator needs on top of it
(servos standing in for ros2_control, the head camera's lens, which geoms may touch what).
"""

from __future__ import annotations

from pathlib import Path

import mujoco
from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

URDF_NAME = "rt_mobile_manipulator.urdf"

BASE_JOINTS = ("base_x_joint", "base_y_joint", "base_yaw_joint")
ARM_JOINTS = tuple(f"arm_joint_{i}" for i in range(1, 8))
GRIPPER_JOINT = "gripper_left_finger_joint"
GRIPPER_MIMIC_JOINT = "gripper_right_finger_joint"
# Order of joint_states, like joint_state_broadcaster: base, arm, gripper.
JOINT_NAMES = (*BASE_JOINTS, *ARM_JOINTS, GRIPPER_JOINT, GRIPPER_MIMIC_JOINT)

BASE_BODY = "base_link"
EE_BODY = "ee_link"
CAMERA_BODY = "head_camera_optical_frame"
CAMERA_NAME = "head_camera"
CAMERA_FOVY_DEG = 55.0
FINGER_BODIES = ("gripper_left_finger_link", "gripper_right_finger_link")
# Ready pose (like an SRDF group state): gripper open, pointing down at the robot's right side, low enough
# that the arm stays out of the head camera's view of the table.
HOME_ARM_JOINTS = (-2.272, 1.783, 1.615, 2.045, -1.741, 1.706, -0.243)

# Contact bits: the robot touches the world (floor, table, objects) but not itself.
WORLD_CONTYPE, WORLD_CONAFFINITY = 1, 3
ROBOT_CONTYPE, ROBOT_CONAFFINITY = 2, 1
# Geom groups: URDF visuals are group 1; collision geoms go to group 3, which renderers hide by default.
COLLISION_GROUP = 3

# Servo stiffness: the joint's URDF effort limit is reached at this position error (rad or m).
FULL_EFFORT_ERROR = {"arm": 0.05, "gripper": 0.02}
# Base velocity servos, N/(m/s) and N m/(rad/s): stiff, like a wheel drive's velocity loop.
BASE_VELOCITY_GAIN = {"base_x_joint": 3000.0, "base_y_joint": 3000.0, "base_yaw_joint": 800.0}
ARM_ARMATURE = 0.05
FINGER_FRICTION = (1.5, 0.01, 0.0005)


def urdf_path() -> Path:
    """The installed URDF, from rt_description's share directory."""
    try:
        return Path(get_package_share_directory("rt_description")) / "urdf" / URDF_NAME
    except PackageNotFoundError as err:
        raise FileNotFoundError("rt_description is not installed: build the workspace and source it") from err


def load_robot_spec(path: str | Path | None = None) -> mujoco.MjSpec:
    """The URDF as an MjSpec with servos on every joint, the head camera and robot contact settings."""
    path = Path(path) if path is not None else urdf_path()
    if not path.is_file():
        raise FileNotFoundError(f"robot URDF not found at {path} (is rt_description built and sourced?)")
    spec = mujoco.MjSpec.from_file(str(path))
    spec.modelname = "rt_mobile_manipulator"
    for geom in spec.geoms:
        if geom.contype or geom.conaffinity:
            geom.contype, geom.conaffinity, geom.group = ROBOT_CONTYPE, ROBOT_CONAFFINITY, COLLISION_GROUP
    for name in FINGER_BODIES:
        for geom in spec.body(name).geoms:
            if geom.group == COLLISION_GROUP:
                geom.friction = FINGER_FRICTION
                geom.condim = 4
    _add_servos(spec)
    _compensate_arm_gravity(spec)
    camera = spec.body(CAMERA_BODY).add_camera()
    camera.name = CAMERA_NAME
    camera.fovy = CAMERA_FOVY_DEG
    # MuJoCo cameras look down -z with y up; the optical frame looks down +z with y down.
    camera.quat = [0.0, 1.0, 0.0, 0.0]
    return spec


def _add_servos(spec: mujoco.MjSpec) -> None:
    """Velocity servos on the planar base joints, position servos on the arm and the gripper."""
    for name in BASE_JOINTS:
        joint = spec.joint(name)
        actuator = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        actuator.set_to_velocity(kv=BASE_VELOCITY_GAIN[name])
        actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.forcerange = joint.actfrcrange
    for name in (*ARM_JOINTS, GRIPPER_JOINT):
        joint = spec.joint(name)
        effort = float(joint.actfrcrange[1])
        kp = effort / FULL_EFFORT_ERROR["gripper" if name == GRIPPER_JOINT else "arm"]
        actuator = spec.add_actuator(name=name, target=name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        actuator.set_to_position(kp=kp, dampratio=1.0)
        actuator.forcelimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.forcerange = [-effort, effort]
        actuator.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        actuator.ctrlrange = joint.range
        if name != GRIPPER_JOINT:
            joint.armature = ARM_ARMATURE


def _compensate_arm_gravity(spec: mujoco.MjSpec) -> None:
    """Gravity compensation on the arm and gripper, applied through the joints' actuators like a real arm's."""
    first_arm_body = spec.joint(ARM_JOINTS[0]).parent
    stack = [first_arm_body]
    while stack:
        body = stack.pop()
        body.gravcomp = 1.0
        for joint in body.joints:
            joint.actgravcomp = True
        stack.extend(body.bodies)

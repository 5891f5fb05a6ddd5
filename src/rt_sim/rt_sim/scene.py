"""The world around the robot: floor, a table, four coloured cubes and four coloured floor markers.

Everything is built once; a `Layout` (sampled by a task from a seed) says where the robot, the cubes
and the markers are for one episode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import mujoco
import numpy as np

from rt_sim.robot_model import WORLD_CONAFFINITY, WORLD_CONTYPE

COLOURS: dict[str, tuple[float, float, float, float]] = {
    "red": (0.85, 0.12, 0.10, 1.0),
    "green": (0.12, 0.65, 0.20, 1.0),
    "blue": (0.12, 0.28, 0.85, 1.0),
    "yellow": (0.95, 0.80, 0.10, 1.0),
}

# The table: fixed in odom, its long side facing -x (where the robot works from).
TABLE_CENTRE = (0.95, 0.0)
TABLE_SIZE = (0.6, 1.2)  # depth (x), width (y)
TABLE_HEIGHT = 0.5
TABLE_TOP_THICKNESS = 0.04
TABLE_FRONT_X = TABLE_CENTRE[0] - TABLE_SIZE[0] / 2

CUBE_SIZE = 0.04
CUBE_MASS = 0.05
MARKER_RADIUS = 0.15
# Half-size of the floor area tasks place things on (m).
ARENA_HALF_SIZE = 4.0

# A fixed third-person view for videos (not the robot's sensor): from the table's front right, it sees the table
# and its cubes, the arm at work, and the floor markers behind the robot.
SCENE_CAMERA = "scene_camera"
SCENE_CAMERA_POSITION = (1.4, -1.9, 1.7)
SCENE_CAMERA_TARGET = (-0.3, 0.1, 0.35)
SCENE_CAMERA_FOVY_DEG = 55.0

TABLE_FRICTION = (0.6, 0.005, 0.0001)
CUBE_FRICTION = (0.8, 0.01, 0.0005)


def look_at(position: tuple[float, ...], target: tuple[float, ...]) -> list[float]:
    """A MuJoCo camera's x and y axes (its `xyaxes`) for looking from `position` at `target`, horizon level."""
    forward = np.subtract(target, position, dtype=np.float64)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, (0.0, 0.0, 1.0))
    right /= np.linalg.norm(right)
    return [*right, *np.cross(right, forward)]


def cube_name(colour: str) -> str:
    return f"{colour}_cube"


def marker_name(colour: str) -> str:
    return f"{colour}_marker"


@dataclass
class Layout:
    """Where everything starts in one episode (odom frame, metres and radians)."""

    base_pose: tuple[float, float, float]
    arm_joints: tuple[float, ...]
    cubes: dict[str, tuple[float, float, float]] = field(default_factory=dict)  # colour -> x, y, yaw on the table
    markers: dict[str, tuple[float, float]] = field(default_factory=dict)  # colour -> x, y on the floor


def add_scene(spec: mujoco.MjSpec) -> None:
    """Adds floor, light, table, cubes (free bodies) and markers (mocap discs) to the robot's spec."""
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0
    spec.visual.headlight.ambient = [0.35, 0.35, 0.35]
    spec.visual.headlight.diffuse = [0.45, 0.45, 0.45]
    world = spec.worldbody

    spec.add_texture(
        name="floor_checker",
        type=mujoco.mjtTexture.mjTEXTURE_2D,
        builtin=mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
        rgb1=[0.62, 0.60, 0.56],
        rgb2=[0.52, 0.50, 0.47],
        width=256,
        height=256,
    )
    floor_material = spec.add_material(name="floor", texrepeat=[16, 16], texuniform=True)
    floor_material.textures[mujoco.mjtTextureRole.mjTEXROLE_RGB] = "floor_checker"
    # A zero-size plane is drawn to the horizon; tasks keep to the ARENA_HALF_SIZE square.
    world.add_geom(
        name="floor",
        type=mujoco.mjtGeom.mjGEOM_PLANE,
        size=[0.0, 0.0, 0.05],
        material="floor",
        contype=WORLD_CONTYPE,
        conaffinity=WORLD_CONAFFINITY,
    )
    world.add_light(name="sun", pos=[0.5, 0.0, 3.0], dir=[0.0, 0.0, -1.0], diffuse=[0.5, 0.5, 0.5], castshadow=False)
    camera = world.add_camera(name=SCENE_CAMERA, pos=list(SCENE_CAMERA_POSITION), fovy=SCENE_CAMERA_FOVY_DEG)
    camera.alt.type = mujoco.mjtOrientation.mjORIENTATION_XYAXES
    camera.alt.xyaxes = look_at(SCENE_CAMERA_POSITION, SCENE_CAMERA_TARGET)

    _add_table(world)
    for colour, rgba in COLOURS.items():
        cube = world.add_body(name=cube_name(colour), pos=[TABLE_CENTRE[0], 0.0, TABLE_HEIGHT + CUBE_SIZE / 2])
        cube.add_freejoint(name=cube_name(colour))
        cube.add_geom(
            name=cube_name(colour),
            type=mujoco.mjtGeom.mjGEOM_BOX,
            size=[CUBE_SIZE / 2] * 3,
            rgba=rgba,
            mass=CUBE_MASS,
            friction=CUBE_FRICTION,
            condim=4,
            contype=WORLD_CONTYPE,
            conaffinity=WORLD_CONAFFINITY,
        )
        marker = world.add_body(name=marker_name(colour), mocap=True, pos=[-2.0, 0.0, 0.0])
        marker.add_geom(
            name=marker_name(colour),
            type=mujoco.mjtGeom.mjGEOM_CYLINDER,
            size=[MARKER_RADIUS, 0.002, 0.0],
            pos=[0.0, 0.0, 0.002],
            rgba=rgba,
            contype=0,
            conaffinity=0,
        )


def _add_table(world: mujoco.MjsBody) -> None:
    table = world.add_body(name="table", pos=[*TABLE_CENTRE, 0.0])
    depth, width = TABLE_SIZE
    wood = [0.55, 0.40, 0.28, 1.0]
    table.add_geom(
        name="table_top",
        type=mujoco.mjtGeom.mjGEOM_BOX,
        size=[depth / 2, width / 2, TABLE_TOP_THICKNESS / 2],
        pos=[0.0, 0.0, TABLE_HEIGHT - TABLE_TOP_THICKNESS / 2],
        rgba=wood,
        friction=TABLE_FRICTION,
        contype=WORLD_CONTYPE,
        conaffinity=WORLD_CONAFFINITY,
    )
    leg_height = TABLE_HEIGHT - TABLE_TOP_THICKNESS
    for sx in (-1, 1):
        for sy in (-1, 1):
            table.add_geom(
                type=mujoco.mjtGeom.mjGEOM_BOX,
                size=[0.025, 0.025, leg_height / 2],
                pos=[sx * (depth / 2 - 0.05), sy * (width / 2 - 0.05), leg_height / 2],
                rgba=[0.35, 0.25, 0.18, 1.0],
                contype=WORLD_CONTYPE,
                conaffinity=WORLD_CONAFFINITY,
            )


def place_cube(model: mujoco.MjModel, data: mujoco.MjData, colour: str, x: float, y: float, yaw: float) -> None:
    """Puts a cube at rest on the table top at (x, y) with heading `yaw`."""
    joint = model.joint(cube_name(colour))
    adr, dof = joint.qposadr[0], joint.dofadr[0]
    data.qpos[adr : adr + 3] = (x, y, TABLE_HEIGHT + CUBE_SIZE / 2)
    data.qpos[adr + 3 : adr + 7] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
    data.qvel[dof : dof + 6] = 0.0


def place_marker(model: mujoco.MjModel, data: mujoco.MjData, colour: str, x: float, y: float) -> None:
    data.mocap_pos[model.body(marker_name(colour)).mocapid[0]] = (x, y, 0.0)


def spaced_points(
    rng: np.random.Generator, count: int, low: tuple[float, float], high: tuple[float, float], min_distance: float
) -> list[tuple[float, float]]:
    """`count` points uniform in the box [low, high], each at least `min_distance` from the others."""
    for _ in range(1000):
        points = rng.uniform(low, high, size=(count, 2))
        gaps = np.linalg.norm(points[:, None] - points[None], axis=-1) + np.eye(count) * min_distance
        if gaps.min() >= min_distance:
            return [tuple(map(float, p)) for p in points]
    raise ValueError(f"cannot place {count} points {min_distance} m apart in {low}..{high}")


# Where the robot works at the table: base x such that its front is 7 cm short of the table edge, facing +x.
WORK_BASE_X = TABLE_FRONT_X - 0.32
# Where cubes are placed on the table (odom x range), within the arm's top-down reach from the work pose.
CUBE_REGION_X = (TABLE_FRONT_X + 0.06, TABLE_FRONT_X + 0.21)
CUBE_REGION_Y = (-0.28, 0.24)
CUBE_MIN_DISTANCE = 0.09


def cubes_on_table(
    rng: np.random.Generator, y_range: tuple[float, float] = CUBE_REGION_Y
) -> dict[str, tuple[float, float, float]]:
    """Every cube somewhere in the table's reachable band, spaced out, with a random heading."""
    points = spaced_points(
        rng, len(COLOURS), (CUBE_REGION_X[0], y_range[0]), (CUBE_REGION_X[1], y_range[1]), CUBE_MIN_DISTANCE
    )
    return {
        colour: (x, y, float(rng.uniform(-math.pi / 4, math.pi / 4)))
        for colour, (x, y) in zip(COLOURS, points, strict=True)
    }


def markers_behind(rng: np.random.Generator) -> dict[str, tuple[float, float]]:
    """Markers on the open floor behind the table's work area, where table tasks never look."""
    points = spaced_points(rng, len(COLOURS), (-3.2, -3.0), (-1.2, 3.0), 2 * MARKER_RADIUS + 0.3)
    return dict(zip(COLOURS, points, strict=True))

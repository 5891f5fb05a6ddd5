"""rt-vl-data: vision-language pairs about simulated camera frames, answered from the simulator's state.

    rt-vl-data --episodes 200 --out data/vl_sim [--seed 0] [--task pick_cube] [--frames-per-episode 4]

Episode i lays out the scene of a task (`--task`, or every task in turn) for seed S + i. Each of its frames
leaves a random subset of the cubes on the table (the others out of sight behind the robot), moves the arm to
a random top-down pose solved with the executor's IK, and sometimes puts a cube between the closed fingers.
Poses where the arm collides with anything, where the gripper is out of view, or where the arm hides an
object that would otherwise be in view are drawn again. Segmentation of the head camera's image says which
objects are in view; `scene_qa` asks its questions about those, in base_link, so every answer holds both for
the image and for the state: how many cubes are on the table, which is nearest the gripper, left or right of
it, what the gripper holds, what is on the table.

Writes the JSONL + PNG format of `rt_policy_node.data.vl_jsonl` (<out>/vl.jsonl, <out>/images/) and
<out>/states.jsonl, whose line i describes the i-th image: its episode, the objects in view and the
privileged state (`Simulation.observe()`). ROS-free: the simulation is posed directly, never stepped.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pinocchio as pin
from ament_index_python.packages import get_package_share_directory
from tqdm import tqdm

from rt_policy_node.data.scene_qa import Scene, SceneObject, scene_qa
from rt_policy_node.data.vl_jsonl import write_vl_jsonl
from rt_policy_node.robot.kinematics import ArmKinematics
from rt_policy_node.robot.profile import IKSettings, load_profile
from rt_sim.expert import TOP_DOWN
from rt_sim.geometry import rot_z, world_to_base
from rt_sim.rendering import RenderingUnavailable
from rt_sim.robot_model import (
    BASE_BODY,
    CAMERA_NAME,
    EE_BODY,
    FINGER_BODIES,
    GRIPPER_JOINT,
    GRIPPER_MIMIC_JOINT,
    ROBOT_CONTYPE,
)
from rt_sim.scene import COLOURS, CUBE_SIZE, TABLE_HEIGHT, cube_name, marker_name
from rt_sim.simulation import Simulation
from rt_sim.tasks import Episode, make_task, task_names

VL_FILE = "vl.jsonl"
STATES_FILE = "states.jsonl"
# The robot profile whose IK settings pose the arm (the executor's, in simulation).
PROFILE = ("rt_description", "profiles/sim.yaml")
# Gripper targets in base_link (m): in front of the robot, above the table top, within the arm's reach.
REACH_X = (0.30, 0.65)
REACH_Y = (-0.30, 0.30)
HEIGHT_ABOVE_TABLE = (0.06, 0.30)
# A held cube hangs this far above the table top at least, so the tasks' lift detector agrees it is picked.
HOLD_HEIGHT_ABOVE_TABLE = 0.10
# The expert's grasp: the tool centre point this far above the cube's centre, along the approach axis.
GRASP_DEPTH = 0.008
# The fingers press this far into a held cube's faces, so the simulator reports both of them touching it.
GRIP_SQUEEZE = 0.001
# Cubes that are not on the table wait behind the robot (base_link x, m), out of the camera's view.
PARKING_X = -1.5
PARKING_SPACING = 0.2
# An object is in view when at least this share of the image shows it (16 px of 320x256), 2 px at least.
MIN_VISIBLE_SHARE = 2e-4
MIN_VISIBLE_PIXELS = 2
POSE_ATTEMPTS = 50


@dataclass
class Frame:
    """One rendered frame, what it shows (base_link) and the simulator's state behind it."""

    image: np.ndarray
    scene: Scene
    state: dict[str, Any]


class SceneFrames:
    """Poses the robot and the cubes of an episode at random and renders what the head camera sees."""

    def __init__(self, sim: Simulation, kinematics: ArmKinematics, ik: IKSettings) -> None:
        self.sim, self.kinematics, self.ik = sim, kinematics, ik
        model = sim.model
        self.segmentation = mujoco.Renderer(model, height=sim.image_height, width=sim.image_width)
        self.segmentation.enable_segmentation_rendering()
        robot_root = model.body_rootid[model.body(BASE_BODY).id]
        robot = [g for g in range(model.ngeom) if model.body_rootid[model.geom_bodyid[g]] == robot_root]
        self.robot_colliders = {g for g in robot if model.geom_contype[g] == ROBOT_CONTYPE}
        palm = model.body_parentid[model.body(FINGER_BODIES[0]).id]
        self.gripper = [g for g in robot if _descends_from(model, model.geom_bodyid[g], palm)]
        self.gripper_colliders = self.robot_colliders.intersection(self.gripper)
        # The camera's view with the robot hidden: what is in view, whatever the arm covers.
        self.without_robot = mujoco.MjvOption()
        for group in {int(model.geom_group[g]) for g in robot}:
            self.without_robot.geomgroup[group] = 0
        self.objects = {
            (kind, colour): model.geom(name(colour)).id
            for kind, name in (("cube", cube_name), ("marker", marker_name))
            for colour in COLOURS
        }
        self.table_top = model.geom("table_top").id
        self.ee_body = model.body(EE_BODY).id
        self.min_pixels = max(MIN_VISIBLE_PIXELS, round(MIN_VISIBLE_SHARE * sim.image_width * sim.image_height))

    def frames(
        self, episode: Episode, count: int, rng: np.random.Generator, keep_fraction: float, hold_fraction: float
    ) -> Iterator[Frame]:
        """Up to `count` frames of `episode`'s layout (one fewer each time no usable arm pose turns up)."""
        for _ in range(count):
            on_table = [c for c in episode.layout.cubes if rng.random() < keep_fraction]
            spare = [c for c in COLOURS if c not in on_table]
            held = str(rng.choice(spare)) if spare and rng.random() < hold_fraction else None
            for _ in range(POSE_ATTEMPTS):
                frame = self._attempt(episode, on_table, held, rng)
                if frame is not None:
                    yield frame
                    break

    def _attempt(
        self, episode: Episode, on_table: list[str], held: str | None, rng: np.random.Generator
    ) -> Frame | None:
        """The frame with the arm at one random top-down pose, or None when that pose is not usable."""
        low = HOLD_HEIGHT_ABOVE_TABLE if held else HEIGHT_ABOVE_TABLE[0]
        height = TABLE_HEIGHT + rng.uniform(low, HEIGHT_ABOVE_TABLE[1])
        target = pin.SE3(
            rot_z(rng.uniform(-math.pi / 4, math.pi / 4)) @ TOP_DOWN,
            np.array([rng.uniform(*REACH_X), rng.uniform(*REACH_Y), height]),
        )
        ik = self.ik
        rest = np.asarray(ik.rest_posture, float)
        solution = self.kinematics.solve(
            target, rest, ik.iterations, ik.tolerance, ik.damping, ik.max_step, rest=rest, rest_gain=ik.rest_gain
        )
        if not solution.reached:
            return None
        self._pose(episode, solution.q, on_table, held)
        held_geom = self.objects["cube", held] if held else None
        if self._colliding(held_geom):
            return None
        shown, in_view = self._pixels(None), self._pixels(self.without_robot)
        if shown[self.gripper].sum() < self.min_pixels:
            return None
        visible = {key for key, g in self.objects.items() if in_view[g] >= self.min_pixels}
        if any(shown[self.objects[key]] < self.min_pixels for key in visible):
            return None  # the arm hides an object
        if held and ("cube", held) not in visible:
            return None
        table_in_view = in_view[self.table_top] >= self.min_pixels
        return Frame(self.sim.render(), self._scene(sorted(visible), table_in_view), self.sim.observe())

    def _pose(self, episode: Episode, arm: np.ndarray, on_table: list[str], held: str | None) -> None:
        """The layout with the arm at `arm`, the cubes `on_table` in place, `held` in the gripper, the rest parked."""
        cubes = {c: episode.layout.cubes[c] for c in on_table}
        self.sim.reset(dataclasses.replace(episode.layout, arm_joints=tuple(arm), cubes=cubes))
        model, data = self.sim.model, self.sim.data
        x, y, yaw = self.sim.base_pose()
        parked = [c for c in COLOURS if c not in on_table and c != held]
        for i, colour in enumerate(parked):
            sideways = (i - (len(COLOURS) - 1) / 2) * PARKING_SPACING
            spot = rot_z(yaw) @ np.array([PARKING_X, sideways, CUBE_SIZE / 2])
            _set_cube(model, data, colour, spot + np.array([x, y, 0.0]), yaw)
        if held:
            tool = data.xmat[self.ee_body].reshape(3, 3)
            # The tool's z axis points down into the grasp; its y axis is the fingers' closing axis.
            centre = data.xpos[self.ee_body] + tool[:, 2] * GRASP_DEPTH
            _set_cube(model, data, held, centre, math.atan2(tool[1, 1], tool[0, 1]))
            for joint in (GRIPPER_JOINT, GRIPPER_MIMIC_JOINT):
                data.qpos[model.joint(joint).qposadr[0]] = CUBE_SIZE / 2 - GRIP_SQUEEZE
        mujoco.mj_forward(model, data)

    def _colliding(self, held_geom: int | None) -> bool:
        """Whether the robot or the held cube touches anything, other than the gripper holding that cube."""
        data = self.sim.data
        for contact in data.contact[: data.ncon]:
            pair = {int(contact.geom1), int(contact.geom2)}
            if held_geom in pair and pair & self.gripper_colliders:
                continue
            if pair & self.robot_colliders or held_geom in pair:
                return True
        return False

    def _pixels(self, option: mujoco.MjvOption | None) -> np.ndarray:
        """Pixels of the head camera's image showing each geom."""
        self.segmentation.update_scene(self.sim.data, camera=CAMERA_NAME, scene_option=option)
        segments = self.segmentation.render()
        geoms = segments[..., 0][segments[..., 1] == int(mujoco.mjtObj.mjOBJ_GEOM)]
        return np.bincount(geoms, minlength=self.sim.model.ngeom)

    def _scene(self, visible: list[tuple[str, str]], table_in_view: bool) -> Scene:
        base = self.sim.base_pose()
        model, data = self.sim.model, self.sim.data
        objects = []
        for kind, colour in visible:
            g = self.objects[kind, colour]
            centre = world_to_base(base, data.geom_xpos[g])
            objects.append(SceneObject(kind, colour, tuple(map(float, centre)), _upright_height(model, g)))
        gripper = tuple(map(float, self.sim.ee_pose()[0]))
        return Scene(tuple(objects), gripper, TABLE_HEIGHT if table_in_view else None)

    def close(self) -> None:
        self.segmentation.close()


def _descends_from(model: mujoco.MjModel, body: int, ancestor: int) -> bool:
    while body != ancestor and body != 0:
        body = model.body_parentid[body]
    return body == ancestor


def _set_cube(model: mujoco.MjModel, data: mujoco.MjData, colour: str, centre: np.ndarray, yaw: float) -> None:
    """Puts a cube's centre at `centre` (odom), upright with heading `yaw`, at rest."""
    joint = model.joint(cube_name(colour))
    adr, dof = joint.qposadr[0], joint.dofadr[0]
    data.qpos[adr : adr + 3] = centre
    data.qpos[adr + 3 : adr + 7] = (math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2))
    data.qvel[dof : dof + 6] = 0.0


def _upright_height(model: mujoco.MjModel, geom: int) -> float:
    """Height of an upright box or cylinder (a cube, a marker disc)."""
    size = model.geom_size[geom]
    return float(2 * (size[1] if model.geom_type[geom] == mujoco.mjtGeom.mjGEOM_CYLINDER else size[2]))


@dataclass(frozen=True)
class Summary:
    """What a run wrote: frames (images) of how many episodes, and question/answer pairs about them."""

    episodes: int
    frames: int
    pairs: int


def generate(
    out: str | Path,
    episodes: int,
    seed: int = 0,
    tasks: list[str] | None = None,
    frames_per_episode: int = 4,
    image_size: tuple[int, int] = (320, 256),
    keep_fraction: float = 0.7,
    hold_fraction: float = 0.3,
    progress: bool = False,
) -> Summary:
    """Writes <out>/vl.jsonl, its images and <out>/states.jsonl for `episodes` episodes (seeds seed, seed + 1, ...)
    of `tasks` in turn (default: every task); `image_size` is (width, height)."""
    out = Path(out)
    if (out / VL_FILE).exists():
        raise FileExistsError(f"{out / VL_FILE} exists; choose another output directory")
    tasks = tasks or task_names()
    profile = load_profile(Path(get_package_share_directory(PROFILE[0])) / PROFILE[1], get_package_share_directory)
    kinematics = ArmKinematics(profile.urdf, profile.arm_joints, profile.base_frame, profile.ee_frame)
    sim = Simulation(image_width=image_size[0], image_height=image_size[1])
    sim.render()  # fails here, with the packages to install, when no OpenGL backend works
    posing = SceneFrames(sim, kinematics, profile.ik)
    states: list[str] = []
    pairs = 0

    def frames() -> Iterator[tuple[np.ndarray, list[tuple[str, str]]]]:
        nonlocal pairs
        for i in tqdm(range(episodes), desc="rt-vl-data", unit="episode", disable=not progress):
            episode = make_task(tasks[(seed + i) % len(tasks)]).episode(seed + i)
            # A stream of its own per episode: frames do not depend on the other episodes or on the layout's draws.
            rng = np.random.default_rng([seed + i, 1])
            for frame in posing.frames(episode, frames_per_episode, rng, keep_fraction, hold_fraction):
                record = {
                    "frame": len(states),
                    "task": episode.task,
                    "seed": episode.seed,
                    "instruction": episode.instruction,
                    "in_view": [o.name for o in frame.scene.objects],
                    "table_in_view": frame.scene.table_height is not None,
                    "state": frame.state,
                }
                states.append(json.dumps(record))
                questions = scene_qa(frame.scene)
                pairs += len(questions)
                yield frame.image, questions

    try:
        write_vl_jsonl(out / VL_FILE, frames())
    finally:
        posing.close()
        sim.close()
    (out / STATES_FILE).write_text("".join(line + "\n" for line in states), encoding="utf-8")
    return Summary(episodes, len(states), pairs)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rt-vl-data", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--episodes", type=int, required=True, help="scene layouts to render")
    parser.add_argument("--out", type=Path, required=True, help="output directory (vl.jsonl, images/, states.jsonl)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode; episode i uses seed + i")
    parser.add_argument("--task", choices=task_names(), help="lay out this task's scenes (default: every task in turn)")
    parser.add_argument("--frames-per-episode", type=int, default=4)
    parser.add_argument("--keep-fraction", type=float, default=0.7, help="chance a cube stays on the table")
    parser.add_argument("--hold-fraction", type=float, default=0.3, help="chance of a cube in the gripper")
    parser.add_argument("--image-width", type=int, default=320)
    parser.add_argument("--image-height", type=int, default=256)
    args = parser.parse_args(argv)
    if args.episodes < 1 or args.frames_per_episode < 1:
        parser.error("--episodes and --frames-per-episode must be at least 1")
    if not (0.0 <= args.keep_fraction <= 1.0 and 0.0 <= args.hold_fraction <= 1.0):
        parser.error("--keep-fraction and --hold-fraction must be in [0, 1]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary = generate(
            args.out,
            args.episodes,
            args.seed,
            [args.task] if args.task else None,
            args.frames_per_episode,
            (args.image_width, args.image_height),
            args.keep_fraction,
            args.hold_fraction,
            progress=True,
        )
    except (FileExistsError, RenderingUnavailable) as err:
        print(f"rt-vl-data: {err}", file=sys.stderr)
        return 1
    print(
        f"rt-vl-data: {summary.pairs} question/answer pairs about {summary.frames} frames of {summary.episodes} "
        f"episodes -> {args.out / VL_FILE}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

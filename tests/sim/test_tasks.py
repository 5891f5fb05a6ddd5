"""The task suite without ROS: registry, seeded episodes, success detectors, the expert's skills."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from rt_policy_node.policies.policy import Action, Mode
from rt_sim.expert import DriveTo, Expert, MoveGripper, Scales, Terminate, grasp_heading, perturb, pick_plan
from rt_sim.geometry import world_to_base
from rt_sim.robot_model import HOME_ARM_JOINTS
from rt_sim.scene import COLOURS, CUBE_MIN_DISTANCE, CUBE_SIZE, TABLE_CENTRE, TABLE_HEIGHT, TABLE_SIZE
from rt_sim.simulation import PHYSICS_RATE_HZ, Simulation
from rt_sim.tasks import make_task, task_names
from rt_sim.tasks.drive_to_marker import STANDOFF, VIEW_HALF_ANGLE

TASKS = ("drive_to_marker", "pick_cube", "push_cube", "table_pick")
SCALES = Scales(
    world_vector=0.05,
    rotation_delta=1.0,
    base_displacement=0.1,
    base_rotation=1.0,
    max_rotation_rad=0.3,
    max_base_rotation_rad=0.4,
)


@pytest.fixture(scope="module")
def sim() -> Simulation:
    sim = Simulation(image_width=32, image_height=32)
    yield sim
    sim.close()


def test_registry_lists_every_task_module():
    assert set(TASKS) <= set(task_names())
    with pytest.raises(KeyError, match=r"known tasks: .*pick_cube"):
        make_task("fly_to_the_moon")


@pytest.mark.parametrize("name", TASKS)
def test_episodes_are_seeded(name):
    task = make_task(name)
    assert task.episode(11) == task.episode(11)
    episodes = [task.episode(seed) for seed in range(8)]
    assert len({str(e.layout) for e in episodes}) == 8
    assert len({e.params["colour"] for e in episodes}) > 1, "targets vary across seeds"
    for episode in episodes:
        assert episode.params["colour"] in episode.instruction
        assert episode.instruction in {t.format(**episode.params) for t in task.templates}


@pytest.mark.parametrize("name", TASKS)
def test_a_colour_asks_for_another_target_in_the_same_layout(name):
    task = make_task(name)
    own = task.episode(5)
    for colour in COLOURS:
        episode = task.episode(5, colour)
        assert episode.layout == own.layout
        assert episode.params == {**own.params, "colour": colour}
        assert episode.instruction == own.instruction.replace(own.params["colour"], colour)
    with pytest.raises(ValueError, match="unknown colour 'purple'"):
        task.episode(5, "purple")


@pytest.mark.parametrize("name", TASKS)
def test_cubes_start_spread_out_on_the_table(name):
    for seed in range(10):
        cubes = make_task(name).episode(seed).layout.cubes
        assert set(cubes) == set(COLOURS)
        points = np.array([c[:2] for c in cubes.values()])
        assert np.all(np.abs(points - TABLE_CENTRE) < np.asarray(TABLE_SIZE) / 2 - CUBE_SIZE)
        gaps = np.linalg.norm(points[:, None] - points[None], axis=-1) + np.eye(len(points))
        assert gaps.min() >= CUBE_MIN_DISTANCE - 1e-9


def test_drive_markers_start_in_the_camera_view():
    task = make_task("drive_to_marker")
    for seed in range(10):
        layout = task.episode(seed).layout
        for marker in layout.markers.values():
            ahead = world_to_base(layout.base_pose, marker)
            assert ahead[0] > 0.8 and abs(math.atan2(ahead[1], ahead[0])) <= VIEW_HALF_ANGLE + 1e-9


@pytest.mark.parametrize("name", TASKS)
def test_a_robot_that_does_nothing_does_not_succeed(sim, name):
    task = make_task(name)
    for seed in range(3):
        episode = task.episode(seed)
        sim.reset(episode.layout)
        sim.step(3 * PHYSICS_RATE_HZ)
        assert not task.success(sim.observe(), episode.params)


def lifted_state(sim: Simulation, colour: str, fingers: int) -> dict:
    state = copy.deepcopy(sim.observe())
    state["cubes"][colour]["position"][2] = TABLE_HEIGHT + CUBE_SIZE / 2 + 0.08
    state["cubes"][colour]["fingers"] = fingers
    return state


def test_success_detectors_read_the_state(sim):
    pick = make_task("pick_cube")
    episode = pick.episode(0)
    sim.reset(episode.layout)
    colour = episode.params["colour"]
    assert pick.success(lifted_state(sim, colour, fingers=2), episode.params)
    assert not pick.success(lifted_state(sim, colour, fingers=1), episode.params), "knocked up, not held"

    drive = make_task("drive_to_marker")
    episode = drive.episode(0)
    sim.reset(episode.layout)
    state = sim.observe()
    marker = state["markers"][episode.params["colour"]]
    state["base"] = [marker[0] - STANDOFF - 0.05, marker[1] + 0.05, 0.0]
    assert drive.success(state, episode.params), "stopped just short of the marker, facing it"
    state["base"] = [marker[0] - STANDOFF, marker[1], math.pi]
    assert not drive.success(state, episode.params), "facing away"
    state["base"] = [marker[0], marker[1], 0.0]
    assert not drive.success(state, episode.params), "on top of it: the camera cannot see it there"

    push = make_task("push_cube")
    for seed in range(4):
        episode = push.episode(seed)
        sim.reset(episode.layout)
        state = sim.observe()
        sign = 1.0 if episode.params["direction"] == "left" else -1.0
        yaw = episode.params["base_yaw"]
        cube = state["cubes"][episode.params["colour"]]["position"]
        for distance, expected in ((0.1, True), (0.05, False), (-0.1, False)):
            moved = copy.deepcopy(state)
            moved_cube = moved["cubes"][episode.params["colour"]]["position"]
            moved_cube[0] = cube[0] - sign * distance * math.sin(yaw)
            moved_cube[1] = cube[1] + sign * distance * math.cos(yaw)
            assert push.success(moved, episode.params) is expected, (seed, distance)


def test_drive_skill_heads_for_the_goal_in_the_base_frame():
    state = {"base": [1.0, 2.0, math.pi / 2]}
    skill = DriveTo(lambda s: (1.0, 2.5), heading=lambda s: math.pi / 2, tolerance_m=0.02)
    skill.start(state)
    action = skill.act(state, SCALES)
    assert action.mode == Mode.BASE
    np.testing.assert_allclose(action.base_displacement, [1.0, 0.0], atol=1e-6), "goal straight ahead, capped"
    state["base"] = [1.0, 2.49, math.pi / 2]
    assert skill.act(state, SCALES) is None


def test_arm_skill_moves_towards_a_top_down_pose():
    state = {"ee_position": [0.4, 0.0, 0.7], "ee_rotation": np.diag([-1.0, 1.0, -1.0]).tolist(), "gripper": 0.0}
    skill = MoveGripper(lambda s, start: np.array([0.42, 0.0, 0.6]), heading=lambda s: 0.0, gripper=-1.0)
    skill.start(state)
    action = skill.act(state, SCALES)
    assert action.mode == Mode.ARM and action.gripper_closedness == -1.0
    np.testing.assert_allclose(action.world_vector, [0.2, 0.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(action.rotation_delta, 0.0, atol=1e-9)
    state["ee_position"] = [0.42, 0.0, 0.605]
    assert skill.act(state, SCALES).gripper_closedness == -1.0, "there, but the fingers are still closed"
    state["gripper"] = 0.04
    assert skill.act(state, SCALES) is None


def test_the_pick_plan_goes_back_when_a_grasp_misses_and_terminates_only_holding_the_cube():
    cube = np.array([0.5, 0.0, TABLE_HEIGHT + CUBE_SIZE / 2])

    def up(z: float) -> np.ndarray:
        return np.array([0.0, 0.0, z])

    grasp = cube + up(0.008)

    def state(ee, gripper: float, cube_at=cube) -> dict:
        return {
            "base": [0.0, 0.0, 0.0],
            "ee_position": list(ee),
            "ee_rotation": np.diag([-1.0, 1.0, -1.0]).tolist(),
            "gripper": gripper,
            "cubes": {"red": {"position": list(cube_at), "yaw": 0.0, "fingers": 0}},
        }

    expert = Expert([*pick_plan("red"), Terminate()], SCALES)
    assert expert.act(state(cube + up(0.10), 0.04)).world_vector[2] < 0, "above the cube: down"
    closing = [expert.act(state(grasp, 0.04)) for _ in range(3)]
    assert all(a.gripper_closedness == 1.0 and not np.any(a.world_vector) for a in closing)
    # The fingers closed on nothing: reopen at the cube instead of lifting (and terminating) empty-handed.
    missed = expert.act(state(grasp, 0.0))
    assert missed.mode == Mode.ARM and missed.gripper_closedness == -1.0 and expert.index == 1
    for _ in range(3):
        expert.act(state(grasp, 0.04))
    lifting = expert.act(state(grasp, 0.02))
    assert lifting.world_vector[2] > 0 and lifting.gripper_closedness == 1.0
    # Up without the cube (it slipped out): back down to it, open, not terminate.
    slipped = expert.act(state(grasp + up(0.06), 0.02))
    assert slipped.mode == Mode.ARM and slipped.world_vector[2] < 0 and slipped.gripper_closedness == -1.0
    for _ in range(3):
        expert.act(state(grasp, 0.04))
    expert.act(state(grasp, 0.02))
    assert expert.act(state(grasp + up(0.12), 0.02, cube_at=cube + up(0.12))).mode == Mode.TERMINATE


def test_grasp_heading_picks_the_nearest_face_pair():
    state = {"base": [0.0, 0.0, 0.3], "cubes": {"red": {"yaw": 0.3 + math.pi / 2 + 0.2}}}
    assert grasp_heading(state, "red") == pytest.approx(0.2)


@pytest.mark.parametrize("name", TASKS)
def test_expert_plans_end_with_terminate(name):
    task = make_task(name)
    plan = task.plan(task.episode(0).params)
    assert isinstance(plan[-1], Terminate)
    expert = Expert(plan, SCALES)
    assert expert.phase == type(plan[0]).__name__
    with pytest.raises(ValueError):
        Expert(plan[:-1], SCALES)


def test_home_pose_matches_the_layouts():
    for name in TASKS:
        assert make_task(name).episode(0).layout.arm_joints == HOME_ARM_JOINTS


def test_dart_noise_scales_with_the_commanded_speed_and_keeps_the_rest():
    rng = np.random.default_rng(0)

    def spread(command: list[float]) -> np.ndarray:
        action = Action(mode=Mode.ARM, world_vector=np.array(command, np.float32), gripper_closedness=-1.0)
        noisy = [perturb(action, 0.3, SCALES, rng) for _ in range(400)]
        assert all(np.abs(a.world_vector).max() <= 1.0 and a.gripper_closedness == -1.0 for a in noisy)
        return np.std([a.world_vector for a in noisy], axis=0)

    transit, approach = spread([0.5, -0.5, 0.0]), spread([0.1, 0.0, 0.05])
    assert np.all((transit > 0.12) & (transit < 0.18)), "std 0.3 x the peak command 0.5"
    assert np.all((approach > 0.02) & (approach < 0.04)), "five times less near the goal"
    still = Action(mode=Mode.ARM, gripper_closedness=1.0)
    assert np.array_equal(perturb(still, 0.3, SCALES, rng).world_vector, still.world_vector), "nothing to perturb"
    drive = Action(mode=Mode.BASE, base_displacement=np.array([0.5, 0.0], np.float32), base_rotation=0.1)
    moved = perturb(drive, 0.3, SCALES, rng)
    assert (
        moved.mode == Mode.BASE and moved.base_rotation != 0.1 and not np.array_equal(moved.base_displacement, [0.5, 0])
    )
    terminate = Action(mode=Mode.TERMINATE)
    assert perturb(terminate, 0.3, SCALES, rng) is terminate

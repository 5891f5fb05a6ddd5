"""rt-vl-data: rendered frames whose question/answer pairs agree with the simulator's state."""

import json
import math

import numpy as np
import pytest

from rt_policy_node.data.vl_jsonl import VLJsonlDataset
from rt_sim.geometry import world_to_base
from rt_sim.scene import COLOURS, CUBE_SIZE, TABLE_HEIGHT
from rt_sim.tasks.pick_cube import cube_lifted
from rt_sim.vl_data import STATES_FILE, VL_FILE, generate, main

WIDTH, HEIGHT = 96, 72


def frames_with_answers(out):
    """[(states.jsonl record, {question: answer})] per image, in order."""
    answers: dict[str, dict[str, str]] = {}
    for line in (out / VL_FILE).read_text().splitlines():
        record = json.loads(line)
        answers.setdefault(record["image"], {})[record["question"]] = record["answer"]
    states = [json.loads(line) for line in (out / STATES_FILE).read_text().splitlines()]
    assert [s["frame"] for s in states] == list(range(len(answers)))
    return list(zip(states, answers.values(), strict=True))


@pytest.fixture(scope="module")
def table_frames(tmp_path_factory):
    out = tmp_path_factory.mktemp("vl_sim")
    size = (WIDTH, HEIGHT)
    summary = generate(
        out, episodes=3, seed=4, tasks=["pick_cube"], frames_per_episode=3, image_size=size, hold_fraction=0.5
    )
    return out, summary


def test_the_pairs_load_as_a_vision_language_dataset(table_frames):
    out, summary = table_frames
    assert (summary.episodes, summary.frames) == (3, 9)
    dataset = VLJsonlDataset(out / VL_FILE)
    assert len(dataset) == summary.pairs > 9 * 5
    example = dataset[0]
    assert example.image.shape == (HEIGHT, WIDTH, 3) and example.image.dtype == np.uint8
    assert example.image.std() > 10  # a rendered scene, not a blank image


def test_answers_agree_with_the_simulator_state(table_frames):
    out, _ = table_frames
    counts, held_frames = set(), 0
    for record, answers in frames_with_answers(out):
        state, in_view = record["state"], set(record["in_view"])
        cubes = state["cubes"]
        resting = {c for c in COLOURS if abs(cubes[c]["position"][2] - (TABLE_HEIGHT + CUBE_SIZE / 2)) < 1e-3}
        # From the work pose at the table every cube on it is in view; the arm never hides one.
        assert {f"{c} cube" for c in resting} <= in_view and record["table_in_view"]
        assert answers["how many cubes are on the table?"] == str(len(resting))
        assert answers["how many objects are there?"] == str(len(in_view))
        listing = answers["what is on the table?"]
        assert all((f"{c} cube" in listing) == (c in resting) for c in COLOURS)
        counts.add(len(resting))

        lifted = [c for c in COLOURS if cube_lifted(state, c)]  # the pick tasks' own detector: both fingers on it
        assert len(lifted) <= 1
        assert answers["what is the gripper holding?"] == (f"the {lifted[0]} cube" if lifted else "nothing")
        held_frames += bool(lifted)

        gripper = np.asarray(state["ee_position"])
        in_base = {c: world_to_base(state["base"], cubes[c]["position"]) for c in COLOURS if f"{c} cube" in in_view}
        if in_base:
            nearest = min(in_base, key=lambda c: math.dist(in_base[c], gripper))
            assert answers["what colour is the cube nearest the gripper?"] == nearest
        for colour, position in in_base.items():
            side = answers.get(f"is the {colour} cube left or right of the gripper?")
            if side is not None:
                assert side == ("left" if position[1] > gripper[1] else "right")
    assert held_frames >= 1 and len(counts) > 1  # the frames vary: some hold a cube, table counts differ


def test_marker_scenes_and_a_refused_output_directory(tmp_path, table_frames, capsys):
    generate(tmp_path, episodes=1, seed=1, tasks=["drive_to_marker"], frames_per_episode=1, image_size=(WIDTH, HEIGHT))
    [(record, answers)] = frames_with_answers(tmp_path)
    markers = {name.split()[0] for name in record["in_view"] if name.endswith("marker")}
    assert markers and answers["what colour is the marker nearest the gripper?"] in markers

    out, _ = table_frames
    assert main(["--episodes", "1", "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err

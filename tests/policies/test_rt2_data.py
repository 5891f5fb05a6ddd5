"""Co-fine-tuning data: the robot/vision-language mixture, the JSONL format and scene questions."""

import json
import os
from collections import Counter

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rt_policy_node.data.cofinetuning import CoFineTuningBatchSampler
from rt_policy_node.data.scene_qa import Scene, SceneObject, scene_examples, scene_qa
from rt_policy_node.data.vl_jsonl import VLExample, VLJsonlDataset, write_vl_jsonl


@settings(max_examples=60, deadline=None)
@given(
    num_robot=st.integers(1, 60),
    num_vl=st.integers(1, 40),
    batch_size=st.integers(1, 12),
    fraction=st.sampled_from([0.5, 0.66, 1.0, 0.25]),
    seed=st.integers(0, 3),
)
def test_every_batch_has_the_robot_share_and_an_epoch_covers_all_robot_steps(
    num_robot, num_vl, batch_size, fraction, seed
):
    sampler = CoFineTuningBatchSampler(num_robot, num_vl, batch_size, fraction, seed=seed)
    batches = list(sampler)
    assert len(batches) == len(sampler)
    robot_seen = Counter()
    for batch in batches:
        robot = [i for i in batch if i < num_robot]
        assert len(batch) == batch_size and len(robot) == sampler.robot_per_batch
        assert all(num_robot <= i < num_robot + num_vl for i in batch if i >= num_robot)
        robot_seen.update(robot)
    assert set(robot_seen) == set(range(num_robot))
    assert sampler.robot_per_batch == max(1, round(batch_size * fraction))


def test_the_order_depends_only_on_seed_and_epoch():
    def epoch(seed, number):
        sampler = CoFineTuningBatchSampler(40, 30, 6, 0.5, seed=seed)
        sampler.set_epoch(number)
        return list(sampler)

    assert epoch(7, 0) == epoch(7, 0)
    assert epoch(7, 0) != epoch(7, 1)
    assert epoch(7, 0) != epoch(8, 0)


def test_ranks_of_a_distributed_run_split_the_batches():
    whole = list(CoFineTuningBatchSampler(50, 20, 4, 0.5, seed=3, world_size=1))
    ranks = [list(CoFineTuningBatchSampler(50, 20, 4, 0.5, seed=3, rank=r, world_size=3)) for r in range(3)]
    assert len({len(r) for r in ranks}) == 1
    interleaved = [batch for group in zip(*ranks, strict=True) for batch in group]
    assert interleaved[: len(whole)] == whole


def test_a_resumed_epoch_continues_where_it_stopped():
    sampler = CoFineTuningBatchSampler(30, 30, 4, 0.5, seed=2, rank=1, world_size=2)
    sampler.set_epoch(3)
    full = list(sampler)
    assert sampler.num_samples == len(full) * 4
    sampler.set_epoch(3, skip=2 * 4)
    assert list(sampler) == full[2:] and len(sampler) == len(full) - 2
    with pytest.raises(ValueError, match="whole number"):
        sampler.set_epoch(3, skip=5)


def test_rt2_mixtures_of_the_paper():
    assert CoFineTuningBatchSampler(10, 10, 8, 0.5).robot_per_batch == 4
    assert CoFineTuningBatchSampler(10, 10, 6, 0.66).robot_per_batch == 4
    with pytest.raises(ValueError, match="none"):
        CoFineTuningBatchSampler(10, 0, 8, 0.5)
    with pytest.raises(ValueError, match="robot_fraction"):
        CoFineTuningBatchSampler(10, 10, 8, 1.5)
    assert next(iter(CoFineTuningBatchSampler(3, 0, 2, 1.0, seed=1)))[0] in range(3)


def test_a_robot_fraction_of_zero_visits_every_vision_language_example_per_epoch():
    sampler = CoFineTuningBatchSampler(0, 10, 4, 0.0, seed=5)
    batches = list(sampler)
    assert len(batches) == 3 and sampler.num_samples == 12
    assert all(len(b) == 4 and all(i >= 0 for i in b) for b in batches)
    assert set(i for b in batches for i in b) == set(range(10))
    assert all(i >= 7 for b in CoFineTuningBatchSampler(7, 10, 4, 0.0) for i in b)  # robot steps present, never drawn
    with pytest.raises(ValueError, match="needs robot examples"):
        CoFineTuningBatchSampler(0, 10, 4, 0.5)


def test_jsonl_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    frames = [
        (rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), [("what colour is the cube?", "red"), ("how many?", "2")]),
        (rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), [("what is on the table?", "nothing")]),
    ]
    path = write_vl_jsonl(tmp_path / "vl" / "vl.jsonl", frames)
    assert len(list((tmp_path / "vl" / "images").iterdir())) == 2
    dataset = VLJsonlDataset(path)
    assert len(dataset) == 3
    first, last = dataset[0], dataset[2]
    assert isinstance(first, VLExample) and (first.question, first.answer) == ("what colour is the cube?", "red")
    np.testing.assert_array_equal(first.image, frames[0][0])
    np.testing.assert_array_equal(last.image, frames[1][0])


def test_jsonl_reads_grey_and_rgba_images_as_rgb(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((4, 5), 77, np.uint8)).save(tmp_path / "grey.png")
    Image.fromarray(np.full((4, 5, 4), 200, np.uint8)).save(tmp_path / "rgba.png")
    lines = [{"image": name, "question": "q?", "answer": "a"} for name in ("grey.png", "rgba.png")]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")
    dataset = VLJsonlDataset(tmp_path / "d.jsonl")
    assert [dataset[i].image.shape for i in range(2)] == [(4, 5, 3), (4, 5, 3)]
    assert dataset[0].image.dtype == np.uint8 and (dataset[0].image == 77).all()


@pytest.mark.parametrize(
    ("line", "error"),
    [
        ("not json", "line 2: not JSON"),
        ('{"image": "a.png", "question": "q"}', "line 2: expected an object"),
        ('{"image": "a.png", "question": "", "answer": "x"}', "line 2: expected an object"),
        ('["a.png", "q", "a"]', "line 2: expected an object"),
        ('{"image": "missing.png", "question": "q", "answer": "a"}', "line 2: image 'missing.png' not found"),
    ],
)
def test_jsonl_errors_name_the_line(tmp_path, line, error):
    from PIL import Image

    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "a.png")
    good = json.dumps({"image": "a.png", "question": "q", "answer": "a"})
    (tmp_path / "d.jsonl").write_text(good + "\n" + line + "\n")
    with pytest.raises((ValueError, FileNotFoundError), match=error):
        VLJsonlDataset(tmp_path / "d.jsonl")


TABLE = 0.5
SCENE = Scene(
    objects=(
        SceneObject("cube", "red", (0.60, 0.10, TABLE + 0.02)),
        SceneObject("cube", "blue", (0.70, -0.20, TABLE + 0.02)),
        SceneObject("cube", "green", (0.45, 0.00, TABLE + 0.15)),  # in the gripper
        SceneObject("marker", "yellow", (1.5, 0.8, 0.001), height=0.002),
    ),
    gripper_position=(0.45, 0.00, TABLE + 0.16),
    table_height=TABLE,
)


def test_scene_questions_are_answered_from_the_state():
    answers = dict(scene_qa(SCENE))
    assert answers["what colour is the cube nearest the gripper?"] == "green"
    assert answers["what colour is the marker nearest the gripper?"] == "yellow"
    assert answers["which object is nearest the gripper?"] == "the green cube"
    assert answers["how many cubes are on the table?"] == "2"
    assert answers["how many markers are on the table?"] == "0"
    assert answers["how many objects are there?"] == "4"
    assert answers["what is on the table?"] == "a blue cube and a red cube"
    assert answers["is the red cube left or right of the gripper?"] == "left"
    assert answers["is the blue cube left or right of the gripper?"] == "right"
    assert "is the green cube left or right of the gripper?" not in answers  # straight ahead: ambiguous
    assert answers["what is the gripper holding?"] == "the green cube"


def test_scene_answers_follow_the_state():
    dropped = Scene(
        objects=(*SCENE.objects[:2], SceneObject("cube", "green", (0.45, 0.0, TABLE + 0.02)), SCENE.objects[3]),
        gripper_position=(0.7, -0.3, TABLE + 0.3),
    )
    answers = dict(scene_qa(dropped))
    assert answers["what is the gripper holding?"] == "nothing"
    assert answers["what colour is the cube nearest the gripper?"] == "blue"
    assert "what is on the table?" not in answers  # no table in this description
    empty = dict(scene_qa(Scene(objects=(), gripper_position=(0, 0, 1), table_height=TABLE)))
    assert empty == {
        "how many objects are there?": "0",
        "what is on the table?": "nothing",
        "what is the gripper holding?": "nothing",
    }


def test_scene_examples_share_the_frame():
    frame = np.zeros((4, 4, 3), np.uint8)
    examples = scene_examples(frame, SCENE)
    assert len(examples) == len(scene_qa(SCENE)) and all(e.image is frame for e in examples)

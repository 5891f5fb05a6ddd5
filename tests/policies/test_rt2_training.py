"""Co-fine-tuning a tiny RT-2 model: the mixture through a DataLoader lowers the loss; a taught plan comes back."""

import itertools
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from rt2_training import train_steps
from torch.utils.data import ConcatDataset, DataLoader

from rt_policy_node.data.cofinetuning import CoFineTuningBatchSampler
from rt_policy_node.data.dataset import DatasetIndex, EpisodeEntry, StoredDataset
from rt_policy_node.data.scene_qa import Scene, SceneObject, scene_qa
from rt_policy_node.data.vl_jsonl import VLJsonlDataset, write_vl_jsonl
from rt_policy_node.policies.action_tokenizer import RT1_ACTION_SPEC, spec_to_json
from rt_policy_node.policies.policy import load_policy
from rt_policy_node.policies.rt2.modeling import RT2Model
from rt_policy_node.policies.rt2.policy import RT2Policy
from rt_policy_node.policies.rt2.presets import build_backbone
from rt_policy_node.policies.rt2.processing import RobotExample, RobotSteps

RNG = np.random.default_rng(0)


def frame() -> np.ndarray:
    return RNG.integers(0, 255, (24, 32, 3), dtype=np.uint8)


def random_tokens() -> np.ndarray:
    return np.concatenate([RNG.integers(0, 3, 1), RNG.integers(0, 256, 10)])


def stored_dataset(directory) -> StoredDataset:
    """A dataset directory as `rt-dataset` writes it: two episodes, five steps."""
    directory.mkdir()
    episodes = [EpisodeEntry("e0", "bag0", 1, start=0, length=3), EpisodeEntry("e1", "bag1", 0, start=3, length=2)]
    index = DatasetIndex(
        image_size=(24, 32),
        action_spec=spec_to_json(RT1_ACTION_SPEC),
        rounding="round",
        instructions=["push the blue cube", "pick up the red cube"],
        text_encoder="none",
        episodes=episodes,
        skipped=[],
        action_stats={},
    )
    np.save(directory / "frames.npy", np.stack([frame() for _ in range(5)]))
    np.save(directory / "tokens.npy", np.stack([random_tokens() for _ in range(5)]).astype(np.uint8))
    np.save(directory / "stamps.npy", np.zeros((5, 2), np.int64))
    np.save(directory / "embeddings.npy", np.zeros((2, 512), np.float32))
    index.save(directory)
    return StoredDataset(directory)


def test_robot_steps_read_a_built_dataset(tmp_path):
    data = stored_dataset(tmp_path / "data")
    steps = RobotSteps(data, spec_to_json(RT1_ACTION_SPEC))
    assert len(steps) == 5
    assert [steps[i].instruction for i in range(5)] == ["pick up the red cube"] * 3 + ["push the blue cube"] * 2
    np.testing.assert_array_equal(steps[4].image, data.frames[4])
    np.testing.assert_array_equal(steps[4].tokens, data.tokens[4])
    with pytest.raises(ValueError, match="action spec"):
        RobotSteps(data, spec_to_json(RT1_ACTION_SPEC[:3]))


def test_a_few_mixture_steps_on_stored_robot_data_and_jsonl_lower_the_loss(tmp_path):
    model = RT2Model.from_backbone(*build_backbone("qwen2_vl", "tiny"))
    robot = RobotSteps(stored_dataset(tmp_path / "data"))
    scene = Scene((SceneObject("cube", "red", (0.6, 0.1, 0.52)),), gripper_position=(0.5, 0.0, 0.7), table_height=0.5)
    vl = VLJsonlDataset(write_vl_jsonl(tmp_path / "vl" / "vl.jsonl", [(frame(), scene_qa(scene))]))
    sampler = CoFineTuningBatchSampler(len(robot), len(vl), batch_size=4, robot_fraction=0.5, seed=0)
    loader = DataLoader(ConcatDataset([robot, vl]), batch_sampler=sampler, collate_fn=model.collator())

    def batches():
        for epoch in itertools.count():
            sampler.set_epoch(epoch)
            yield from loader

    history = train_steps(model, batches(), steps=16, lr=3e-3)
    losses = [m["loss"] for m in history]
    assert all(m["robot_fraction"] == 0.5 for m in history)
    assert np.mean(losses[-3:]) < 0.75 * np.mean(losses[:3])


def test_a_taught_plan_and_action_come_back_through_a_saved_checkpoint(tmp_path):
    model = RT2Model.from_backbone(*build_backbone("idefics3", "tiny"), plan=True, max_plan_tokens=12)
    image, tokens = frame(), np.array([1, 0, 255, 128, 7, 99, 1, 254, 30, 60, 90])
    batch = itertools.repeat(model.collator()([RobotExample(image, "lift the red cube", tokens, plan="grasp it")]))
    history = []
    while len(history) < 80 and [m["token_accuracy"] for m in history[-2:]] != [1.0, 1.0]:
        history += train_steps(model, batch, steps=2, lr=3e-3)
    RT2Policy(model).save_pretrained(tmp_path)
    policy = load_policy(tmp_path)
    policy.reset("lift the red cube")
    action = policy.act(image, 0.0)
    np.testing.assert_array_equal(action.tokens, tokens)
    assert policy.last_plan == "grasp it"

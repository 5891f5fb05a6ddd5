"""Each supported backbone family end to end: tiny model, collate + loss, constrained act, save and load."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from rt_policy_node.cli import rt2_init
from rt_policy_node.data.vl_jsonl import VLExample
from rt_policy_node.policies.policy import Action, Mode, load_policy
from rt_policy_node.policies.rt2.backbones import save_backbone
from rt_policy_node.policies.rt2.modeling import RT2Model
from rt_policy_node.policies.rt2.policy import RT2Policy
from rt_policy_node.policies.rt2.presets import build_backbone, default_corpus, train_tokenizer
from rt_policy_node.policies.rt2.processing import IGNORE, RobotExample

FAMILIES = ["paligemma", "idefics3", "qwen2_vl"]
RNG = np.random.default_rng(0)
FRAME = RNG.integers(0, 255, (48, 64, 3), dtype=np.uint8)
TOKENS = np.array([2, 0, 255, 128, 7, 99, 1, 254, 30, 60, 90])


def make_model(family: str, strategy: str = "integers", **config) -> RT2Model:
    split_digits = strategy == "least_frequent"
    tokenizer = train_tokenizer(default_corpus(), family, 1024, split_digits=split_digits)
    vlm, io = build_backbone(family, "tiny", tokenizer=tokenizer)
    corpus = default_corpus() if split_digits else None
    return RT2Model.from_backbone(vlm, io, strategy=strategy, corpus=corpus, **config)


def assert_valid(action: Action) -> None:
    assert action.tokens.shape == (11,) and action.tokens.dtype == np.int64
    assert isinstance(action.mode, Mode) and 0 <= action.tokens[0] <= 2 and (action.tokens[1:] <= 255).all()
    assert np.abs(action.world_vector).max() <= 1.0 and action.inference_ms > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_collate_puts_labels_on_the_answer_only(family):
    model = make_model(family)
    examples = [RobotExample(FRAME, "pick up the red cube", TOKENS), VLExample(FRAME[:20], "what colour?", "red")]
    batch = model.collator()(examples)
    labels, ids = batch["labels"], batch["input_ids"]
    assert labels.shape == ids.shape == batch["attention_mask"].shape
    answer = labels != IGNORE
    assert torch.equal(labels[answer], ids[answer])
    robot_answer = ids[0, answer[0]].tolist()
    assert robot_answer == [*model.codec.encode(TOKENS).tolist(), model.io.eos_id]
    assert batch["action_mask"][0].sum() == 11 and not batch["action_mask"][1].any()
    vl_answer = ids[1, answer[1]].tolist()
    assert vl_answer == [*model.io.text_ids(model.io.answer_separator + "red"), model.io.eos_id]
    # Answers come right after the prompt; padding (right) is unattended and unlabelled.
    for row in range(2):
        attended = batch["attention_mask"][row].bool()
        last = int(attended.nonzero().max())
        assert answer[row, last] and not answer[row, last + 1 :].any() and attended[: last + 1].all()
    assert batch["is_robot"].tolist() == [True, False]
    loss, metrics = model(batch)
    assert torch.isfinite(loss) and loss.requires_grad
    assert set(metrics) == {"token_accuracy", "robot_fraction", "action_accuracy"}
    assert metrics["robot_fraction"] == 0.5 and not metrics["token_accuracy"].requires_grad


@pytest.mark.parametrize("family", FAMILIES)
def test_act_save_and_load_through_load_policy(family, tmp_path):
    policy = RT2Policy(make_model(family))
    policy.reset("Pick up the red cube.")
    action = policy.act(FRAME, stamp=1.0)
    assert_valid(action)
    policy.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["policy"] == "rt2" and config["codec"]["strategy"] == "integers"
    assert (tmp_path / "backbone" / "model.safetensors").is_file()
    assert not list(tmp_path.rglob("*.bin")) and not list(tmp_path.rglob("*.pt"))
    loaded = load_policy(tmp_path)
    assert isinstance(loaded, RT2Policy)
    loaded.reset("pick up the red cube")
    np.testing.assert_array_equal(loaded.act(FRAME, stamp=2.0).tokens, action.tokens)


def test_least_frequent_codec_on_a_digit_splitting_tokenizer_end_to_end(tmp_path):
    model = make_model("qwen2_vl", strategy="least_frequent")
    assert model.config.codec["strategy"] == "least_frequent"
    policy = RT2Policy(model)
    policy.reset("push the blue cube")
    assert_valid(policy.act(FRAME, 0.0))
    policy.save_pretrained(tmp_path)
    again = load_policy(tmp_path)
    assert again.model.codec.strategy == "least_frequent"
    np.testing.assert_array_equal(again.model.codec.ids, model.codec.ids)


def test_plan_mode_acts_with_a_plan_on_an_untrained_model():
    policy = RT2Policy(make_model("paligemma", plan=True, max_plan_tokens=5))
    policy.reset("pick up the red cube")
    assert_valid(policy.act(FRAME, 0.0))
    assert isinstance(policy.last_plan, str)


def test_bad_calls_and_bad_images_are_clear_errors():
    policy = RT2Policy(make_model("idefics3"))
    with pytest.raises(RuntimeError, match="reset"):
        policy.act(FRAME, 0.0)
    with pytest.raises(ValueError, match="empty"):
        policy.reset("  ")
    policy.reset("pick up the red cube")
    for bad in (FRAME.astype(np.float32), FRAME[..., :2], FRAME[0], FRAME[:0], "frame"):
        with pytest.raises(ValueError, match="image"):
            policy.act(bad, 0.0)
    assert_valid(policy.act(FRAME, 0.0))


def test_a_checkpoint_may_point_at_a_backbone_beside_it(tmp_path):
    policy = RT2Policy(make_model("idefics3"))
    policy.reset("pick up the red cube")
    expected = policy.act(FRAME, 0.0).tokens
    policy.save_pretrained(tmp_path / "vla")
    (tmp_path / "vla" / "backbone").rename(tmp_path / "smolvlm")
    config = json.loads((tmp_path / "vla" / "config.json").read_text())
    (tmp_path / "vla" / "config.json").write_text(json.dumps(config | {"backbone": "../smolvlm"}))
    loaded = load_policy(tmp_path / "vla")
    loaded.reset("pick up the red cube")
    np.testing.assert_array_equal(loaded.act(FRAME, 0.0).tokens, expected)


def test_loading_checks_the_checkpoint(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"policy": "rt2", "codec": {"strategy": "integers"}}))
    with pytest.raises(FileNotFoundError, match="backbone"):
        RT2Policy.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"policy": "rt2", "codec": {}, "colour": "red"}))
    with pytest.raises(ValueError, match="unknown RT-2 config fields"):
        RT2Policy.from_pretrained(tmp_path)


def test_rt2_init_from_a_preset_and_from_a_local_backbone(tmp_path, capsys):
    assert rt2_init.main([str(tmp_path / "preset"), "--preset", "tiny", "--family", "paligemma", "--plan"]) == 0
    assert "codec integers" in capsys.readouterr().out
    policy = load_policy(tmp_path / "preset")
    assert policy.model.config.plan and policy.model.vlm.config.model_type == "paligemma"
    # A pretrained model whose tokenizer cuts numbers into digits (as SmolLM2's does) gets the other codec.
    tokenizer = train_tokenizer(default_corpus(), "idefics3", 1024, split_digits=True)
    save_backbone(*build_backbone("idefics3", "tiny", tokenizer=tokenizer), tmp_path / "smolvlm")
    assert rt2_init.main([str(tmp_path / "vla"), "--backbone", str(tmp_path / "smolvlm")]) == 0
    assert "codec least_frequent" in capsys.readouterr().out
    policy = load_policy(tmp_path / "vla")
    policy.reset("pick up the red cube")
    assert_valid(policy.act(FRAME, 0.0))

"""rt2-vl-eval: exact-match accuracy of a checkpoint's free-text answers."""

import itertools
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from rt2_training import train_steps

from rt_policy_node.cli.rt2_vl_eval import main, normalise, vl_accuracy
from rt_policy_node.data.vl_jsonl import VLJsonlDataset, write_vl_jsonl
from rt_policy_node.policies.rt2.modeling import RT2Model
from rt_policy_node.policies.rt2.presets import build_backbone

RED, BLUE = (220, 40, 40), (40, 70, 220)


def square(colour) -> np.ndarray:
    image = np.full((32, 32, 3), 120, np.uint8)
    image[8:24, 8:24] = colour
    return image


PAIRS = [
    (square(RED), [("what colour is the cube nearest the gripper?", "red"), ("what is on the table?", "a red cube")]),
    (square(BLUE), [("what colour is the cube nearest the gripper?", "blue"), ("what is on the table?", "nothing")]),
]


def test_normalise_ignores_case_spacing_and_a_full_stop():
    assert normalise("  The  Red cube. ") == normalise("the red cube") == "the red cube"
    assert normalise("red") != normalise("reds")


def test_a_model_taught_the_answers_scores_full_marks(tmp_path, capsys):
    path = write_vl_jsonl(tmp_path / "vl" / "vl.jsonl", PAIRS)
    dataset = VLJsonlDataset(path)
    model = RT2Model.from_backbone(*build_backbone("idefics3", "tiny"))
    untrained = vl_accuracy(model, dataset)
    assert untrained.total == 4 and untrained.accuracy < 1.0

    batch = itertools.repeat(model.collator()([dataset[i] for i in range(len(dataset))]))
    history = []
    while len(history) < 300 and (not history or history[-1]["loss"] > 0.05):
        history += train_steps(model, batch, steps=5, lr=3e-3)
    score = vl_accuracy(model, dataset)
    assert (score.correct, score.total) == (4, 4)
    assert score.by_question["what is on the table?"] == (2, 2)
    assert vl_accuracy(model, dataset, limit=2).total == 2

    model.save_pretrained(tmp_path / "model")
    assert main(["--policy", str(tmp_path / "model"), "--data", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("exact match 1.000 (4/4)") and "what is on the table?" in out
    assert main(["--policy", str(tmp_path / "nothing"), "--data", str(path)]) == 1
    assert "no RT-2 checkpoint" in capsys.readouterr().err

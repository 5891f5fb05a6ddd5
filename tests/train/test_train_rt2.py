"""rt-train --policy rt2: co-fine-tuning a tiny RT-2 in the shared loop (mixed batches, resume, loadable policy)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rt_policy_node.cli.rt2_init import main as rt2_init
from rt_policy_node.data.synthetic import COLOURS
from rt_policy_node.data.vl_jsonl import write_vl_jsonl
from rt_policy_node.policies.policy import load_policy
from rt_policy_node.policies.rt2.config import BACKBONE_DIR
from rt_policy_node.policies.rt2.policy import RT2Policy
from rt_policy_node.train.checkpoint import latest_checkpoint, step_dir
from rt_policy_node.train.train import main as rt_train
from rt_policy_node.train.training_log import read_log

WEIGHTS = f"{BACKBONE_DIR}/model.safetensors"
DDP_WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.fixture(scope="module")
def init_dir(tmp_path_factory):
    """An untrained tiny RT-2 checkpoint, as `rt2-init` writes it."""
    out = tmp_path_factory.mktemp("rt2") / "init"
    assert rt2_init([str(out), "--preset", "tiny", "--family", "idefics3"]) == 0
    return out


@pytest.fixture(scope="module")
def vl_file(tmp_path_factory):
    """Sixteen pairs about eight frames of one coloured square, on the left or the right."""
    frames = []
    for i in range(8):
        colour = list(COLOURS)[i % len(COLOURS)]
        side = "left" if i % 2 else "right"
        image = np.full((32, 32, 3), 120, np.uint8)
        columns = slice(2, 14) if side == "left" else slice(18, 30)
        image[10:22, columns] = COLOURS[colour]
        frames.append((image, [("what colour is the square?", colour), ("is the square left or right?", side)]))
    return write_vl_jsonl(tmp_path_factory.mktemp("vl") / "vl.jsonl", frames)


def _args(init_dir, dataset_dir, vl_file, out, steps, *extra):
    return [
        *("--policy", "rt2", "--init", str(init_dir), "--data", str(dataset_dir), "--vl-data", str(vl_file)),
        *("--out", str(out), "--steps", str(steps), "--batch-size", "4", "--num-workers", "0"),
        *("--lr", "3e-3", "--warmup-steps", "2", "--log-every", "1"),
        *extra,
    ]


def test_co_fine_tuning_lowers_the_loss_with_the_robot_share_in_every_batch(tmp_path, init_dir, dataset_dir, vl_file):
    out = tmp_path / "run"
    args = _args(init_dir, dataset_dir, vl_file, out, 20, "--robot-fraction", "0.5", "--save-every", "10")
    assert rt_train(args) == 0
    log = read_log(out / "log.csv")
    assert log["step"] == list(range(1, 21))
    assert log["robot_fraction"] == [0.5] * 20  # two robot steps and two vision-language pairs in every batch
    assert len(log["action_accuracy"]) == 20
    assert np.mean(log["loss"][-3:]) < 0.75 * np.mean(log["loss"][:3])
    assert (out / "loss.png").is_file() and (out / "train_config.json").is_file()
    assert sorted(d.name for d in (out / "checkpoints").iterdir()) == ["step_00000010", "step_00000020"]
    for path in (out, step_dir(out, 10)):
        policy = load_policy(path)
        policy.reset("move to the red square")
        assert policy.act(np.zeros((40, 48, 3), np.uint8), 0.0).tokens.shape == (11,)
    final, last = load_file(out / WEIGHTS), load_file(step_dir(out, 20) / WEIGHTS)
    initial = load_file(init_dir / WEIGHTS)
    assert all(torch.equal(final[k], last[k]) for k in final)
    assert not all(torch.equal(final[k], initial[k]) for k in final)


def test_a_resumed_rt2_run_continues_exactly(tmp_path, init_dir, dataset_dir, vl_file):
    out = tmp_path / "run"
    args = _args(init_dir, dataset_dir, vl_file, out, 8, "--robot-fraction", "0.75", "--save-every", "4")
    assert rt_train(args) == 0
    uninterrupted = load_file(out / WEIGHTS)
    log = read_log(out / "log.csv")
    assert log["robot_fraction"] == [0.75] * 8
    shutil.rmtree(step_dir(out, 8))
    assert latest_checkpoint(out) == step_dir(out, 4)

    assert rt_train([*args, "--resume"]) == 0
    resumed = load_file(out / WEIGHTS)
    assert all(torch.equal(uninterrupted[k], resumed[k]) for k in uninterrupted)
    again = read_log(out / "log.csv")
    assert all(again[name] == log[name] for name in ("step", "loss", "token_accuracy", "action_accuracy", "lr"))


def test_vision_language_pre_training_and_clear_errors(tmp_path, init_dir, dataset_dir, vl_file, capsys):
    out = tmp_path / "vl_only"
    assert rt_train(_args(init_dir, dataset_dir, vl_file, out, 3, "--robot-fraction", "0")) == 0
    log = read_log(out / "log.csv")
    assert log["robot_fraction"] == [0.0] * 3 and "action_accuracy" not in log

    no_vl = ["--policy", "rt2", "--init", str(init_dir), "--data", str(dataset_dir), "--out", str(tmp_path / "a")]
    assert rt_train(no_vl) == 1
    assert "give --vl-data" in capsys.readouterr().err
    assert rt_train(["--policy", "rt2", "--data", str(dataset_dir), "--out", str(tmp_path / "b")]) == 1
    assert "--init DIR" in capsys.readouterr().err


@pytest.mark.timeout(240)
def test_two_processes_co_fine_tune_as_one(tmp_path, init_dir, dataset_dir, vl_file):
    out = tmp_path / "run"
    args = _args(init_dir, dataset_dir, vl_file, out, 3, "--robot-fraction", "0.5", "--num-threads", "1")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(DDP_WORKER)]
    result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=220)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [load_file(out / f"rank{r}.safetensors") for r in range(2)]
    assert all(torch.equal(value, ranks[1][key]) for key, value in ranks[0].items())
    assert read_log(out / "log.csv")["robot_fraction"] == [0.5] * 3
    assert isinstance(load_policy(out), RT2Policy)

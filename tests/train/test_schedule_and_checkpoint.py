"""The learning-rate schedule's shape, and training state surviving a checkpoint without pickle."""

import itertools
import json

import pytest
import torch

from rt_policy_node.train.checkpoint import (
    STATE_JSON,
    STATE_TENSORS,
    latest_checkpoint,
    load_checkpoint,
    prune_checkpoints,
    save_checkpoint,
    step_dir,
)
from rt_policy_node.train.schedule import make_schedule, warmup_cosine


def test_warmup_rises_linearly_then_cosine_decays_to_the_floor():
    schedule = make_schedule(warmup_steps=10, total_steps=110, min_ratio=0.1)
    assert schedule(0) == pytest.approx(0.1)
    assert schedule(9) == pytest.approx(1.0)
    assert schedule(10) == pytest.approx(1.0)
    assert schedule(60) == pytest.approx(0.55)
    assert schedule(110) == pytest.approx(0.1)
    assert schedule(500) == pytest.approx(0.1)
    values = [schedule(s) for s in range(10, 111)]
    assert all(a >= b for a, b in itertools.pairwise(values))


class TinyModel(torch.nn.Linear):
    def save_pretrained(self, path):
        (path / "config.json").write_text(json.dumps({"policy": "tiny"}))


def _setup(seed):
    torch.manual_seed(seed)
    model = TinyModel(4, 3)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, make_schedule(2, 20))
    return model, optimizer, scheduler


def _step(model, optimizer, scheduler):
    loss = torch.nn.functional.dropout(model(torch.randn(8, 4)), 0.5).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    scheduler.step()


def test_a_restored_checkpoint_continues_exactly_like_the_original_run(tmp_path):
    model, optimizer, scheduler = _setup(0)
    for _ in range(3):
        _step(model, optimizer, scheduler)
    save_checkpoint(step_dir(tmp_path, 3), model, optimizer, scheduler, {"step": 3})
    saved_weights = {k: v.clone() for k, v in model.state_dict().items()}
    for _ in range(2):
        _step(model, optimizer, scheduler)

    other, other_optimizer, other_scheduler = _setup(1)
    other.load_state_dict(saved_weights)
    state = load_checkpoint(latest_checkpoint(tmp_path), other_optimizer, other_scheduler)
    assert state == {"step": 3}
    for _ in range(2):
        _step(other, other_optimizer, other_scheduler)
    assert other_scheduler.last_epoch == scheduler.last_epoch == 5
    for key, value in model.state_dict().items():
        torch.testing.assert_close(other.state_dict()[key], value, rtol=0, atol=0)


def test_checkpoints_hold_no_pickle_and_only_the_newest_are_kept(tmp_path):
    model, optimizer, scheduler = _setup(0)
    for step in (1, 2, 3):
        _step(model, optimizer, scheduler)
        save_checkpoint(step_dir(tmp_path, step), model, optimizer, scheduler, {"step": step})
    prune_checkpoints(tmp_path, keep=2)
    names = sorted(d.name for d in (tmp_path / "checkpoints").iterdir())
    assert names == ["step_00000002", "step_00000003"]
    newest = latest_checkpoint(tmp_path)
    assert newest.name == "step_00000003"
    assert sorted(p.name for p in newest.iterdir()) == ["config.json", STATE_JSON, STATE_TENSORS]
    json.loads((newest / STATE_JSON).read_text())


def test_an_unfinished_checkpoint_is_not_resumed_from(tmp_path):
    (tmp_path / "checkpoints" / "step_00000009.tmp").mkdir(parents=True)
    (tmp_path / "checkpoints" / "step_00000008").mkdir()
    assert latest_checkpoint(tmp_path) is None


def test_a_resumed_run_follows_the_schedule_of_its_own_settings(tmp_path):
    model, optimizer, scheduler = _setup(0)
    for _ in range(5):
        _step(model, optimizer, scheduler)
    save_checkpoint(step_dir(tmp_path, 5), model, optimizer, scheduler, {"step": 5})
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    longer = torch.optim.lr_scheduler.LambdaLR(optimizer, make_schedule(2, 40))
    load_checkpoint(step_dir(tmp_path, 5), optimizer, longer)
    _step(model, optimizer, longer)
    assert longer.get_last_lr()[0] == pytest.approx(0.1 * warmup_cosine(6, 2, 40, 0.1))
    assert longer.get_last_lr()[0] > 0.1 * warmup_cosine(6, 2, 20, 0.1)

"""A dataset from real episodes: the simulator, scripted expert, executor and recorder run by rt-collect."""

import json
import shutil
import subprocess

import numpy as np
import pytest

from rt_policy_node.data.cli import main as rt_dataset
from rt_policy_node.data.dataset import StoredDataset
from rt_policy_node.data.windows import WindowDataset
from rt_policy_node.policies.policy import Mode


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_collected_episodes_build_into_aligned_training_windows(tmp_path):
    collect = shutil.which("rt-collect")
    if collect is None:
        pytest.skip("rt-collect is not installed (run make setup)")
    bags = tmp_path / "bags"
    command = [
        collect,
        "--task",
        "drive_to_marker",
        "--episodes",
        "2",
        "--out",
        str(bags),
        "--image-width",
        "64",
        "--image-height",
        "48",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=200)
    assert result.returncode == 0, result.stderr[-3000:]
    sidecars = [json.loads(p.read_text()) for p in sorted(bags.glob("episode_*/episode.json"))]
    assert len(sidecars) == 2

    out = tmp_path / "dataset"
    assert rt_dataset(["build", str(bags), "--out", str(out), "--preset", "rt1_small"]) == 0
    data = StoredDataset(out)
    succeeded = [s for s in sidecars if s["extra"]["expert_success"]]
    assert len(data.index.episodes) == len(succeeded)
    assert len(data.index.skipped) == len(sidecars) - len(succeeded)
    for episode, sidecar in zip(data.index.episodes, succeeded, strict=True):
        assert data.index.instructions[episode.instruction_id] == sidecar["instruction"]
        assert episode.length == sidecar["message_counts"]["/rt/action"]
        steps = slice(episode.start, episode.start + episode.length)
        assert data.tokens[steps][-1, 0] == Mode.TERMINATE
        assert (data.tokens[steps][:-1, 0] == Mode.BASE).all()
    assert data.frames.shape[1:] == (128, 128, 3)
    stamps = np.asarray(data.stamps)
    assert (stamps[:, 1] <= stamps[:, 0]).all()
    windows = WindowDataset(data, 6)
    item = windows[data.index.episodes[0].start + 2]
    assert item["step_mask"].tolist() == [True, True, True, False, False, False]
    assert item["images"].shape == (6, 128, 128, 3)

"""rt-train under torchrun: two CPU processes (gloo) train as one and end with identical weights."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from rt_policy_node.policies.rt1.model import RT1

WORKER = Path(__file__).with_name("ddp_worker.py")


@pytest.mark.timeout(240)
def test_two_processes_hold_identical_weights_after_training(tmp_path, dataset_dir, tiny_config, tiny_config_file):
    out = tmp_path / "run"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(WORKER),
        "--data",
        str(dataset_dir),
        "--out",
        str(out),
        "--model-config",
        str(tiny_config_file),
        "--steps",
        "4",
        "--batch-size",
        "2",
        "--num-workers",
        "0",
        "--log-every",
        "2",
        "--lr",
        "1e-3",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=220)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [load_file(out / f"rank{r}.safetensors") for r in range(2)]
    assert ranks[0].keys() == ranks[1].keys()
    for key, value in ranks[0].items():
        assert torch.equal(value, ranks[1][key]), key
    saved = load_file(out / "model.safetensors")
    assert all(torch.equal(saved[k], ranks[0][k]) for k in saved)
    # Trained, not merely initialised alike: the weights moved away from the seeded initial ones.
    torch.manual_seed(0)
    initial = RT1(tiny_config).state_dict()
    assert not torch.equal(initial["transformer.to_logits.weight"], saved["transformer.to_logits.weight"])
    assert (out / "checkpoints" / "step_00000004").is_dir()
    assert (out / "log.csv").read_text().count("\n") == 3

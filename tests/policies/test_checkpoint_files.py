"""Checkpoints never unpickle (#21 finding 5) and name the file that is wrong (finding 6): a directory with only
`torch.save` weights is refused with a conversion command that works, and a malformed config.json is named."""

from __future__ import annotations

import ast
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from rt_policy_node.policies.constant import ConstantPolicy, ConstantPolicyConfig
from rt_policy_node.policies.policy import load_policy
from rt_policy_node.policies.rt1.config import RT1Config
from rt_policy_node.policies.rt1.model import RT1
from rt_policy_node.policies.rt2.modeling import RT2Model
from rt_policy_node.policies.rt2.policy import RT2Policy
from rt_policy_node.policies.rt2.presets import build_backbone, default_corpus, train_tokenizer

SRC = Path(__file__).resolve().parents[2] / "src"
# A 1-layer, 64-wide RT-1 on 64x64 frames: loads in milliseconds.
TINY_RT1 = RT1Config(
    efficientnet="b0",
    image_size=64,
    token_dim=32,
    model_dim=64,
    num_layers=1,
    num_heads=2,
    head_dim=32,
    swiglu_hidden_dim=96,
)
FRAME = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)


def run_conversion(message: str) -> None:
    """Runs the command a refusal quotes (after its last ': ') as a user would."""
    command = message.rsplit(": ", 1)[1]
    assert command.startswith("python -c ")
    subprocess.run([sys.executable, *shlex.split(command)[1:]], check=True, capture_output=True)


def test_an_rt2_backbone_saved_with_torch_save_is_refused_then_converted(tmp_path):
    tokenizer = train_tokenizer(default_corpus(), "paligemma", 1024)
    vlm, io = build_backbone("paligemma", "tiny", tokenizer=tokenizer)
    policy = RT2Policy(RT2Model.from_backbone(vlm, io))
    policy.reset("pick up the red cube")
    expected = policy.act(FRAME, stamp=1.0).tokens
    policy.save_pretrained(tmp_path)
    backbone = tmp_path / "backbone"
    (backbone / "model.safetensors").unlink()
    torch.save(vlm.state_dict(), backbone / "pytorch_model.bin")  # what an honest `torch.save` checkpoint holds
    with pytest.raises(ValueError, match=re.escape("only in pickle format (pytorch_model.bin)")) as refused:
        load_policy(tmp_path)
    run_conversion(str(refused.value))
    loaded = load_policy(tmp_path)
    loaded.reset("pick up the red cube")
    np.testing.assert_array_equal(loaded.act(FRAME, stamp=2.0).tokens, expected)


def test_an_rt1_checkpoint_with_only_a_pickle_is_refused_then_converted(tmp_path):
    model = RT1(TINY_RT1)
    model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").unlink()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    with pytest.raises(ValueError, match=re.escape("only in pickle format (weights.pt)")) as refused:
        RT1.from_pretrained(tmp_path)
    run_conversion(str(refused.value))
    loaded = RT1.from_pretrained(tmp_path)
    for key, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], tensor)


def test_malformed_checkpoint_files_are_named(tmp_path):
    ConstantPolicy(ConstantPolicyConfig()).save_pretrained(tmp_path)
    config = tmp_path / "config.json"
    config.write_text('{"policy": "constant",\n  "mode": }')
    with pytest.raises(ValueError, match=re.escape(f"{config}: not valid JSON (Expecting value: line 2 column 11")):
        load_policy(tmp_path)
    config.write_text('["constant"]')
    with pytest.raises(ValueError, match=re.escape(f"{config}: expected a JSON object, got list")):
        load_policy(tmp_path)
    config.write_text('{"policy": "constant", "speed": 3}')
    with pytest.raises(ValueError, match=re.escape(f"{config}: ") + ".*unexpected keyword argument 'speed'"):
        load_policy(tmp_path)
    RT1(TINY_RT1).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(ValueError, match=re.escape("model.safetensors: not a readable safetensors file")):
        load_policy(tmp_path)


def test_nothing_in_src_unpickles():
    """No call to torch.load, pickle.load(s), or anything with weights_only=False, and no np.load with pickles."""
    calls = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = ast.unparse(node.func)
            keywords = {k.arg: ast.unparse(k.value) for k in node.keywords}
            if (
                name in ("torch.load", "pickle.load", "pickle.loads", "joblib.load", "dill.load")
                or keywords.get("weights_only") == "False"
                or keywords.get("allow_pickle") == "True"
            ):
                calls.append(f"{path.relative_to(SRC)}:{node.lineno} {ast.unparse(node)}")
    assert not calls, calls

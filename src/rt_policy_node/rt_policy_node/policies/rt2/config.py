"""RT-2 checkpoint configuration, saved as config.json beside (or around) the backbone directory.

    <checkpoint>/config.json     this dataclass: "policy": "rt2", the codec's strategy and id table, ...
    <checkpoint>/backbone/       the vision-language model (transformers layout: config.json,
                                 model.safetensors, tokenizer and processor files)

`backbone` is a path relative to the checkpoint directory (or absolute), so a checkpoint may also point at a
model directory beside it; `save_pretrained` always writes the backbone inside.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rt_policy_node.policies.action_tokenizer import RT1_ACTION_SPEC, spec_to_json
from rt_policy_node.policies.checkpoint import read_json

CONFIG_FILE = "config.json"
BACKBONE_DIR = "backbone"


@dataclass
class RT2Config:
    """What an RT-2 checkpoint needs beyond the backbone's own files."""

    # ActionTextCodec.to_json(): {"strategy": "integers" | "least_frequent", "ids": [256 vocabulary ids]}.
    codec: dict[str, Any]
    policy: str = "rt2"
    backbone: str = BACKBONE_DIR
    action_spec: list[dict[str, Any]] = field(default_factory=lambda: spec_to_json(RT1_ACTION_SPEC))
    rounding: str = "round"
    # Chain of thought: answer "Plan: {plan}. Action: {ids}" instead of the ids alone.
    plan: bool = False
    max_plan_tokens: int = 32
    # 0 decodes greedily; above 0 samples (still constrained) at this temperature.
    temperature: float = 0.0
    dtype: str = "float32"

    def save(self, directory: str | Path) -> None:
        (Path(directory) / CONFIG_FILE).write_text(json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> RT2Config:
        path = Path(directory) / CONFIG_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no RT-2 checkpoint at {directory}: {CONFIG_FILE} is missing")
        raw = read_json(path)
        if raw.get("policy") != "rt2":
            raise ValueError(f"{path}: 'policy' is {raw.get('policy')!r}, expected 'rt2'")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ValueError(f"{path}: unknown RT-2 config fields {unknown}")
        return cls(**raw)

    def backbone_path(self, directory: str | Path) -> Path:
        return (Path(directory) / self.backbone).resolve()

"""Training hyperparameters: one dataclass, saved as `train_config.json` in the run directory."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

TRAIN_CONFIG_FILE = "train_config.json"


@dataclass
class TrainConfig:
    """Everything `rt-train` needs besides the model's own config (from `preset`, `model_config` or `init`)."""

    # Dataset directories, each `DIR` or `DIR:WEIGHT`; several are trained on as a weighted mixture.
    data: list[str]
    out: str
    policy: str = "rt1"
    preset: str = "rt1_small"
    # A JSON model config (e.g. a preset's config.json, edited) used instead of `preset`; with `init`, the config
    # the init weights are put under (same parameter shapes: a new output stride, dropout or augmentation).
    model_config: str | None = None
    # A policy checkpoint to start from instead of a new model (RT-2: a directory written by rt2-init).
    init: str | None = None
    # Vision-language JSONL files (rt_policy_node.data.vl_jsonl) mixed into RT-2 training.
    vl_data: list[str] = field(default_factory=list)
    # RT-2's share of robot examples in every batch, the rest vision-language (the paper: 0.5 or 0.66);
    # 1 trains on robot data alone, 0 on vision-language data alone.
    robot_fraction: float = 0.5
    steps: int = 10_000
    batch_size: int = 8  # per process
    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 500
    min_lr_ratio: float = 0.1
    grad_clip: float = 1.0
    num_workers: int = 2
    seed: int = 0
    log_every: int = 10
    save_every: int = 1000
    keep_checkpoints: int = 3
    device: str = "auto"
    # CPU threads per process for torch (0: torch's default). On a busy machine fewer threads than cores
    # is much faster than oversubscription.
    num_threads: int = 0
    # RT-1 instruction augmentation (rt_policy_node.data.paraphrase): this many paraphrases per instruction of
    # the dataset, and the chance that a window trains on one of them instead of the recorded instruction.
    paraphrases: int = 0
    paraphrase_prob: float = 0.5
    # Validation on a held-out dataset every `val_every` steps (RT-1): the metrics go into log.csv and the
    # checkpoint with the best `val_metric` (higher is better, lower for a loss) is kept as RUN/best.
    val_data: str | None = None
    val_every: int = 500
    val_steps: int = 600
    val_metric: str = "val_token_accuracy"

    def __post_init__(self) -> None:
        self.betas = tuple(self.betas)
        self.data = [self.data] if isinstance(self.data, str) else list(self.data)
        positive = ("steps", "batch_size", "log_every", "save_every", "keep_checkpoints", "val_every", "val_steps")
        bad = [name for name in positive if getattr(self, name) < 1]
        bad += [name for name in ("lr", "grad_clip") if not getattr(self, name) > 0]
        bad += [
            name
            for name in ("warmup_steps", "num_workers", "weight_decay", "num_threads", "paraphrases")
            if getattr(self, name) < 0
        ]
        bad += [name for name in ("robot_fraction", "paraphrase_prob") if not 0.0 <= getattr(self, name) <= 1.0]
        if bad:
            raise ValueError(f"invalid training settings: {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")

    def save(self, directory: str | Path) -> None:
        (Path(directory) / TRAIN_CONFIG_FILE).write_text(json.dumps(dataclasses.asdict(self), indent=1) + "\n")

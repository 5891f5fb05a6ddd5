"""Training throughput per RT-1 preset: the data loader alone vs the full training step (loader + model).

    scripts/with_env.sh python benchmarks/train_throughput.py [--presets rt1_small rt1] [--steps 6]

Builds a dataset of synthetic episodes (camera-sized 256x320 frames, resized to each preset's input), then
for each preset measures samples/s of (a) iterating the window loader with augmentation, (b) `rt-train`'s
own loop (forward, backward, AdamW, clipping; bf16 autocast on GPU), steady state after warm-up steps.
The full step is the number that matters: the loader should be far faster, so the model bounds training.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch

from rt_policy_node.data.builder import build_dataset
from rt_policy_node.data.cli import resize_frame
from rt_policy_node.data.synthetic import write_synthetic_episodes
from rt_policy_node.data.windows import make_loader
from rt_policy_node.policies.rt1.config import rt1_preset
from rt_policy_node.policies.text import default_text_encoder
from rt_policy_node.train.config import TrainConfig
from rt_policy_node.train.recipes import RECIPES
from rt_policy_node.train.train import train
from rt_policy_node.train.training_log import read_log

# Samples (windows of 6 frames) per batch when --batch-size is not given.
BATCH = {
    ("cpu", "rt1_sim"): 16,
    ("cpu", "rt1_small"): 8,
    ("cpu", "rt1"): 2,
    ("cuda", "rt1_sim"): 128,
    ("cuda", "rt1_small"): 64,
    ("cuda", "rt1"): 16,
}


def loader_rate(config: TrainConfig, model: torch.nn.Module, batches: int) -> float:
    """Samples per second from the window loader alone (memory-mapped frames, augmentation, collation)."""
    dataset = RECIPES[config.policy].make_dataset(config, model)
    loader, sampler = make_loader(dataset, config.batch_size, config.num_workers, seed=config.seed)
    seen, start, epoch = 0, None, 0
    while seen < batches + 1:
        sampler.set_epoch(epoch)
        dataset.set_epoch(epoch)
        for _ in loader:
            seen += 1
            if seen == 1:
                start = time.perf_counter()  # worker start-up is not throughput
            if seen == batches + 1:
                break
        epoch += 1
    return batches * config.batch_size / (time.perf_counter() - start)


def train_rate(config: TrainConfig, warmup: int, steps: int) -> float:
    """Samples per second of rt-train's loop, over the `steps` steps after `warmup` steps."""
    train(dataclasses.replace(config, steps=warmup + steps, log_every=warmup if warmup else steps))
    log = read_log(Path(config.out) / "log.csv")
    rows = [rate for step, rate in zip(log["step"], log["samples_per_s"], strict=True) if step > warmup]
    return sum(rows) / len(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["rt1_sim", "rt1_small", "rt1"])
    parser.add_argument("--batch-size", type=int, help="per step (default: by preset and device)")
    parser.add_argument("--steps", type=int, default=6, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=2, help="untimed training steps first")
    parser.add_argument("--loader-batches", type=int, default=30)
    parser.add_argument("--num-workers", type=int, default=2)
    parser.add_argument("--num-threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--episodes", type=int, default=8)
    args = parser.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    name = torch.cuda.get_device_name() if device == "cuda" else f"CPU, {torch.get_num_threads()} torch threads"
    print(f"device: {name}; torch {torch.__version__}")
    header = (
        f"{'preset':<10} {'params':>8} {'batch':>5} {'loader samples/s':>17} {'train samples/s':>16} {'ms/step':>8}"
    )
    print(header, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_synthetic_episodes(root / "bags", args.episodes, steps=12, frame_size=(256, 320))
        for preset in args.presets:
            size = rt1_preset(preset).image_size
            data = root / f"data_{size}"
            if not data.exists():
                build_dataset(
                    [root / "bags"],
                    data,
                    size,
                    lambda f, s=size: resize_frame(f, s),
                    default_text_encoder(),
                    progress=False,
                )
            batch = args.batch_size or BATCH[(device, preset)]
            config = TrainConfig(
                data=str(data),
                out=str(root / f"run_{preset}"),
                preset=preset,
                batch_size=batch,
                num_workers=args.num_workers,
                save_every=10**6,
                warmup_steps=0,
            )
            model = RECIPES[config.policy].build_model(config)
            params = sum(p.numel() for p in model.parameters()) / 1e6
            loader = loader_rate(config, model, args.loader_batches)
            full = train_rate(config, args.warmup, args.steps)
            print(f"{preset:<10} {params:>7.1f}M {batch:>5} {loader:>17.1f} {full:>16.2f} {1000 * batch / full:>8.0f}")


if __name__ == "__main__":
    main()

"""RT-1 control-tick latency: streaming (one encoder pass per tick) vs re-encoding the whole 6-frame window.

    python benchmarks/rt1_inference.py [--presets rt1 rt1_small] [--threads 1 2] [--ticks 30] [--device cpu]

Each preset runs in its own process (so peak RSS is its own), on random weights and 256x320 uint8
camera frames, through `RT1Policy.act`. "cached" is a control tick as the policy node runs it: encode
the new frame, run the Transformer over the window. "uncached" encodes all 6 frames of the window
every tick. Figures are the median and the minimum over the ticks; on a shared machine the minimum is
the closer estimate of the uncontended time, so the load average is printed too. Targets on the 2-core
CPU: rt1 >= 10 Hz per tick (2.5x the TF reference's graph mode, ~255 ms/tick), rt1_small >= 30 Hz.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from rt_policy_node.policies.rt1.config import rt1_preset
from rt_policy_node.policies.rt1.model import RT1
from rt_policy_node.policies.rt1.policy import RT1Policy
from rt_policy_node.process_settings import configure_cpu_inference

TF_GRAPH_MS = 255.0
TARGET_HZ = {"rt1": 10.0, "rt1_small": 30.0}


class FixedEncoder:
    dim = 512

    def embed(self, text: str) -> np.ndarray:
        return np.random.default_rng(0).standard_normal(512).astype(np.float32)


def _timed(fn, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) * 1000


def measure(preset: str, ticks: int, device: str, threads: int | None) -> dict:
    """One preset in this process: per-tick latency cached and uncached, parameters, peak memory."""
    torch.manual_seed(0)
    model = RT1(rt1_preset(preset)).to(device)
    if device == "cpu":
        configure_cpu_inference(threads)
    policy = RT1Policy(model, FixedEncoder())
    device = policy.device
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (ticks + 6, 256, 320, 3), dtype=np.uint8)
    policy.reset("pick up the can")
    for frame in video[:6]:  # fills the window (and folds batch norm once)
        policy.act(frame, 0.0)
    cached = [_timed(lambda f=frame: policy.act(f, 0.0), device) for frame in video[6:]]

    text = torch.from_numpy(FixedEncoder().embed("pick up the can")).to(device)[None]
    cuda = device.type == "cuda"

    def uncached_tick(end: int) -> None:
        window = torch.from_numpy(video[end - 6 : end]).to(device)[None]
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            model.decode_last_step(model.encode_images(window, text), text)

    uncached = [_timed(lambda e=end: uncached_tick(e), device) for end in range(6, 6 + max(3, ticks // 3))]
    return {
        "preset": preset,
        "device": str(device),
        "threads": torch.get_num_threads(),
        "params": sum(p.numel() for p in model.parameters()),
        "cached_median_ms": statistics.median(cached),
        "cached_min_ms": min(cached),
        "uncached_median_ms": statistics.median(uncached),
        "uncached_min_ms": min(uncached),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["rt1", "rt1_small"])
    parser.add_argument("--ticks", type=int, default=30)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, nargs="+", help="CPU intra-op threads to try (default: 1 and all)")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        threads = args.threads[0] if args.threads else None
        print(json.dumps(measure(args.one, args.ticks, args.device, threads)))
        return

    cpus = len(os.sched_getaffinity(0))
    thread_counts = [None] if args.device != "cpu" else args.threads or sorted({1, cpus})
    load_before = os.getloadavg()[0]
    rows = []
    for preset in args.presets:
        for threads in thread_counts:
            command = [sys.executable, __file__, "--one", preset, "--ticks", str(args.ticks), "--device", args.device]
            command += ["--threads", str(threads)] if threads else []
            result = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    load_after = os.getloadavg()[0]

    print(f"RT-1 inference per control tick, torch {torch.__version__}, {cpus} CPUs available, ")
    print(f"load average {load_before:.1f} before / {load_after:.1f} after (median | min over {args.ticks} ticks)\n")
    header = ("preset", "device", "params", "cached ms", "Hz", "uncached ms", "uncached/cached", "peak RSS", "target")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        hz_median, hz_best = 1000 / r["cached_median_ms"], 1000 / r["cached_min_ms"]
        ratio = r["uncached_median_ms"] / r["cached_median_ms"], r["uncached_min_ms"] / r["cached_min_ms"]
        target = TARGET_HZ.get(r["preset"])
        memory = f"{r['peak_rss_mb']:.0f} MB" + (f" (GPU {r['peak_gpu_mb']:.0f} MB)" if r["peak_gpu_mb"] else "")
        cells = (
            r["preset"],
            f"{r['device']} x{r['threads']}" if r["device"] == "cpu" else r["device"],
            f"{r['params'] / 1e6:.1f}M",
            f"{r['cached_median_ms']:.1f} / {r['cached_min_ms']:.1f}",
            f"{hz_median:.1f} / {hz_best:.1f}",
            f"{r['uncached_median_ms']:.1f} / {r['uncached_min_ms']:.1f}",
            f"{ratio[0]:.1f}x / {ratio[1]:.1f}x",
            memory,
            f">= {target:.0f} Hz" if target else "",
        )
        print("| " + " | ".join(cells) + " |")
    for r in rows:
        if r["preset"] == "rt1":
            speedup = TF_GRAPH_MS / r["cached_median_ms"], TF_GRAPH_MS / r["cached_min_ms"]
            print(
                f"rt1 ({r['device']} x{r['threads']}) vs the TF reference's graph mode ({TF_GRAPH_MS:.0f} ms/tick): "
                f"{speedup[0]:.1f}x / {speedup[1]:.1f}x"
            )


if __name__ == "__main__":
    main()

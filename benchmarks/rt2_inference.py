"""RT-2 inference speed on this machine: prefill against per-token decoding, the action constraint's
overhead, and actions per second through `RT2Policy.act`.

Models are built from config with random weights (nothing is downloaded): the `sim` preset (Idefics3
family, trainable on a CPU) and `smolvlm-256m`, SmolVLM-256M's shape. Random weights decode as fast as
trained ones: the answer always has the same 11 tokens.

    scripts/with_env.sh python benchmarks/rt2_inference.py [--presets sim smolvlm-256m] [--repeats 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import torch

from rt_policy_node.policies.rt2.constrained import ActionConstraint
from rt_policy_node.policies.rt2.modeling import RT2Model
from rt_policy_node.policies.rt2.policy import RT2Policy
from rt_policy_node.policies.rt2.presets import build_backbone
from rt_policy_node.policies.rt2.prompts import action_prompt

INSTRUCTION = "pick up the red cube"


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def bench(preset: str, repeats: int, frame: np.ndarray) -> None:
    start = time.perf_counter()
    model = RT2Model.from_backbone(*build_backbone("idefics3", preset)).eval()
    build_s = time.perf_counter() - start
    params = sum(p.numel() for p in model.parameters())
    inputs = model.prompt_inputs(frame, action_prompt(INSTRUCTION))
    prompt_tokens = inputs["input_ids"].shape[1]
    model.generate(inputs)  # warm-up

    constrained, free, first = [], [], []
    for _ in range(repeats):  # interleaved, so load from other processes hits all three alike
        first.append(median_ms(lambda: model.generate(inputs, max_new_tokens=1), 1))
        constrained.append(median_ms(lambda: model.generate(inputs), 1))
        free.append(median_ms(lambda: model.generate(inputs, constrained=False), 1))
    prefill, answer, answer_free = (statistics.median(t) for t in (first, constrained, free))
    free_tokens = model.generate(inputs, constrained=False).shape[1]
    per_token = (answer - prefill) / 10

    # The constraint's own cost: one call per answer token on scores of the model's vocabulary size.
    vocab = model.allowed.shape[1]
    constraint = ActionConstraint(model.allowed, prompt_tokens, model.io.eos_id)
    scores = torch.randn(1, vocab)

    def constrain_answer() -> None:
        for k in range(11):
            constraint(torch.zeros(1, prompt_tokens + k, dtype=torch.long), scores)

    constraint_ms = median_ms(constrain_answer, 20)

    policy = RT2Policy(model)
    policy.reset(INSTRUCTION)
    act_ms = median_ms(lambda: policy.act(frame, 0.0), repeats)

    print(f"\n{preset}: idefics3 family, {params / 1e6:.1f}M parameters (built in {build_s:.1f} s)")
    print(f"  prompt: {prompt_tokens} tokens for a {frame.shape[1]}x{frame.shape[0]} frame, vocabulary {vocab}")
    print(f"  prefill (image + prompt, first token)   {prefill:9.1f} ms")
    print(f"  decode per token (KV cache)             {per_token:9.1f} ms")
    print(f"  11-token answer, constrained            {answer:9.1f} ms")
    print(f"  {free_tokens:2d}-token answer, unconstrained          {answer_free:9.1f} ms")
    print(f"  end-to-end constraint overhead          {100 * (answer - answer_free) / answer_free:+9.1f} %")
    print(f"  constraint calls per answer             {constraint_ms:9.3f} ms ({100 * constraint_ms / answer:.2f} %)")
    print(f"  RT2Policy.act                           {act_ms:9.1f} ms = {1000 / act_ms:.2f} actions/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["sim", "smolvlm-256m"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    frame = np.random.default_rng(0).integers(0, 255, (256, 320, 3), dtype=np.uint8)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs (shared machine)")
    with torch.inference_mode():
        for preset in args.presets:
            bench(preset, args.repeats, frame)


if __name__ == "__main__":
    main()

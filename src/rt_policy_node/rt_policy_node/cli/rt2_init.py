"""`rt2-init`: writes an untrained RT-2 checkpoint, the starting point for co-fine-tuning.

    rt2-init OUT --preset sim                       a backbone built from config (random weights)
    rt2-init OUT --backbone ~/models/SmolVLM-256M   a pretrained vision-language model from a local directory

The action codec uses the vocabulary's number tokens when every 0..255 is one token and otherwise the
256 tokens least used in the corpus (the project's default corpus plus the lines of --corpus files).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rt_policy_node.policies.rt2.backbones import load_backbone
from rt_policy_node.policies.rt2.codec import ActionTextCodec
from rt_policy_node.policies.rt2.modeling import RT2Model
from rt_policy_node.policies.rt2.presets import PRESETS, build_backbone, default_corpus


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="rt2-init", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, help="checkpoint directory to write")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--preset", choices=sorted(PRESETS), default="sim", help="build a backbone of this size")
    source.add_argument("--backbone", type=Path, help="local transformers directory of a supported VLM")
    parser.add_argument("--family", choices=["paligemma", "idefics3", "qwen2_vl"], default="idefics3")
    parser.add_argument("--strategy", choices=["auto", "integers", "least_frequent"], default="auto")
    parser.add_argument("--corpus", type=Path, nargs="*", default=[], help="text files, one example per line")
    parser.add_argument("--plan", action="store_true", help="chain of thought: a plan before each action")
    parser.add_argument("--max-plan-tokens", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    corpus = default_corpus()
    for path in args.corpus:
        corpus += [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if args.backbone is not None:
        vlm, io = load_backbone(args.backbone)
    else:
        vlm, io = build_backbone(args.family, args.preset, corpus=corpus, seed=args.seed)
    strategy = args.strategy
    if strategy == "auto":
        try:
            ActionTextCodec.integers(io.tokenizer)
            strategy = "integers"
        except ValueError:
            strategy = "least_frequent"
    model = RT2Model.from_backbone(
        vlm, io, strategy=strategy, corpus=corpus, plan=args.plan, max_plan_tokens=args.max_plan_tokens
    )
    model.save_pretrained(args.out)
    params = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.out}: {vlm.config.model_type}, {params / 1e6:.1f}M parameters, codec {strategy}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

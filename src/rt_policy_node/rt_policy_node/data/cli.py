"""`rt-dataset`: build a training dataset from recorded episodes, and describe one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from rt_policy_node.data import dataset as layout
from rt_policy_node.data.action_stats import plot_action_histograms
from rt_policy_node.data.builder import build_dataset
from rt_policy_node.data.dataset import DatasetIndex
from rt_policy_node.data.episode_reader import EpisodeTopics
from rt_policy_node.policies.action_tokenizer import ActionTokenizer
from rt_policy_node.policies.rt1.config import PRESETS, rt1_preset
from rt_policy_node.policies.rt1.image import preprocess
from rt_policy_node.policies.text import default_text_encoder


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """HxWx3 uint8 -> size x size x 3 uint8 with the model's own resize, so a stored frame is what the
    policy would compute from the camera frame at run time (up to rounding to uint8)."""
    resized = preprocess(torch.from_numpy(np.array(frame)), size)[0]
    return resized.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _build(args: argparse.Namespace) -> int:
    if (args.preset is None) == (args.image_size is None):
        print("rt-dataset build: give exactly one of --preset or --image-size", file=sys.stderr)
        return 2
    config = rt1_preset(args.preset) if args.preset else None
    size = args.image_size or config.image_size
    rounding = args.rounding or (config.action_rounding if config else "round")
    topics = EpisodeTopics(args.image_topic, args.action_topic, args.instruction_topic)
    # One frame's resize is too small a job to share between threads; on a busy machine threads only wait.
    torch.set_num_threads(1)
    try:
        index = build_dataset(
            args.bags,
            args.out,
            size,
            lambda frame: resize_frame(frame, size),
            default_text_encoder(),
            tokenizer=ActionTokenizer(rounding=rounding),
            topics=topics,
            include_failed=args.include_failed,
            overwrite=args.overwrite,
        )
    except (ValueError, FileExistsError) as err:
        print(f"rt-dataset build: {err}", file=sys.stderr)
        return 1
    print(index.describe())
    print(f"wrote {args.out}")
    return 0


def _info(args: argparse.Namespace) -> int:
    try:
        index = DatasetIndex.load(args.dir)
    except (FileNotFoundError, ValueError) as err:
        print(f"rt-dataset info: {err}", file=sys.stderr)
        return 1
    print(index.describe())
    plot = Path(args.dir) / layout.HISTOGRAM_FILE
    if not plot.is_file():
        plot_action_histograms(np.load(Path(args.dir) / layout.ACTIONS_FILE), index.spec, plot)
    print(f"action histograms: {plot}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rt-dataset", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="turn episode bags into a training dataset")
    build.add_argument("bags", nargs="+", help="episode directories, or folders holding them")
    build.add_argument("--out", required=True, help="dataset directory to write")
    build.add_argument("--preset", choices=PRESETS, help="take the frame size and label rounding from this RT-1 preset")
    build.add_argument("--image-size", type=int, help="square frame size to store (instead of --preset)")
    build.add_argument("--rounding", choices=("round", "floor"), help="label rule for untokenised actions")
    build.add_argument("--include-failed", action="store_true", help="keep episodes marked expert_success=false")
    build.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    defaults = EpisodeTopics()
    build.add_argument("--image-topic", default=defaults.image)
    build.add_argument("--action-topic", default=defaults.action)
    build.add_argument("--instruction-topic", default=defaults.instruction)
    build.set_defaults(run=_build)
    info = commands.add_parser("info", help="describe a dataset")
    info.add_argument("dir")
    info.set_defaults(run=_info)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

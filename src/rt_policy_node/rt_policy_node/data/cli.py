"""`rt-dataset`: build a training dataset from recorded episodes or import one from RLDS shards, describe one,
and export episodes as a LeRobot dataset."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from rt_policy_node.data import dataset as layout
from rt_policy_node.data.action_stats import plot_action_histograms
from rt_policy_node.data.builder import build_dataset
from rt_policy_node.data.dataset import DatasetIndex
from rt_policy_node.data.episode_reader import EpisodeTopics
from rt_policy_node.data.lerobot import CODECS, VideoOptions, export_lerobot
from rt_policy_node.data.rlds import DEFAULT_FPS, RLDS_TEXT_ENCODER, RldsError, import_rlds
from rt_policy_node.policies.action_tokenizer import ActionTokenizer
from rt_policy_node.policies.rt1.config import PRESETS, RT1Config, rt1_preset
from rt_policy_node.policies.rt1.image import preprocess
from rt_policy_node.policies.text import PrecomputedTextEncoder, TextEncoder, default_text_encoder


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """HxWx3 uint8 -> size x size x 3 uint8 with the model's own resize, so a stored frame is what the
    policy would compute from the camera frame at run time (up to rounding to uint8)."""
    resized = preprocess(torch.from_numpy(np.array(frame)), size)[0]
    return resized.round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()


def _frame_options(args: argparse.Namespace, command: str, default_rounding: str) -> tuple[int, str] | None:
    """(stored frame size, label rounding) from exactly one of --preset, --model-config and --image-size;
    None (after saying why) when the choice is missing or ambiguous."""
    given = [name for name in ("preset", "model_config", "image_size") if getattr(args, name) is not None]
    if len(given) != 1:
        print(f"rt-dataset {command}: give exactly one of --preset, --model-config or --image-size", file=sys.stderr)
        return None
    config = None
    if args.preset:
        config = rt1_preset(args.preset)
    elif args.model_config:
        try:
            config = RT1Config.from_dict(json.loads(Path(args.model_config).read_text()))
        except (OSError, ValueError, TypeError) as err:
            print(f"rt-dataset {command}: --model-config {args.model_config}: {err}", file=sys.stderr)
            return None
    size = args.image_size or config.image_size
    return size, args.rounding or (config.action_rounding if config else default_rounding)


def _text_encoder(args: argparse.Namespace) -> TextEncoder:
    if args.text_embeddings:
        return PrecomputedTextEncoder.from_npz(args.text_embeddings, name=args.text_encoder_name)
    return default_text_encoder()


def _build(args: argparse.Namespace) -> int:
    options = _frame_options(args, "build", "round")
    if options is None:
        return 2
    size, rounding = options
    topics = EpisodeTopics(args.image_topic, args.action_topic, args.instruction_topic)
    # One frame's resize is too small a job to share between threads; on a busy machine threads only wait.
    torch.set_num_threads(1)
    try:
        index = build_dataset(
            args.bags,
            args.out,
            size,
            lambda frame: resize_frame(frame, size),
            _text_encoder(args),
            tokenizer=ActionTokenizer(rounding=rounding),
            topics=topics,
            include_failed=args.include_failed,
            overwrite=args.overwrite,
        )
    except (ValueError, KeyError, OSError) as err:
        print(f"rt-dataset build: {err}", file=sys.stderr)
        return 1
    print(index.describe())
    print(f"wrote {args.out}")
    return 0


def _import_rlds(args: argparse.Namespace) -> int:
    options = _frame_options(args, "import-rlds", "floor")
    if options is None:
        return 2
    size, rounding = options
    torch.set_num_threads(1)
    try:
        index = import_rlds(
            args.shards,
            args.out,
            size,
            lambda frame: resize_frame(frame, size),
            ActionTokenizer(rounding=rounding),
            image_key=args.image_key,
            fps=args.fps,
            max_episodes=args.max_episodes,
            overwrite=args.overwrite,
        )
    except (RldsError, ValueError, OSError) as err:
        print(f"rt-dataset import-rlds: {err}", file=sys.stderr)
        return 1
    print(index.describe())
    reasons = Counter(s.reason for s in index.skipped)
    if reasons:
        print(f"skipped {len(index.skipped)} records:")
        for reason, count in reasons.most_common():
            print(f"  {count:5d}  {reason}")
    print(f"wrote {args.out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    video = VideoOptions(codec=args.codec, crf=args.crf, gop=args.gop, pix_fmt=args.pix_fmt)
    topics = EpisodeTopics(args.image_topic, args.action_topic, args.instruction_topic)
    try:
        summary = export_lerobot(
            args.sources,
            args.out,
            fps=args.fps,
            video=video,
            robot_type=args.robot_type,
            tokenizer=ActionTokenizer(rounding=args.rounding),
            topics=topics,
            overwrite=args.overwrite,
        )
    except (ValueError, OSError) as err:
        print(f"rt-dataset export: {err}", file=sys.stderr)
        return 1
    print(f"episodes: {summary.episodes}, frames: {summary.frames}, tasks: {len(summary.tasks)}, fps: {summary.fps}")
    print(f"skipped episodes: {len(summary.skipped)}")
    for skipped in summary.skipped:
        print(f"  {skipped.source}: {skipped.reason}")
    print(f"wrote {args.out} (LeRobotDataset v3.0)")
    return 0


def _frame_arguments(parser: argparse.ArgumentParser, default_rounding: str) -> None:
    parser.add_argument(
        "--preset", choices=PRESETS, help="take the frame size and label rounding from this RT-1 preset"
    )
    parser.add_argument("--model-config", help="take them from a model's config.json (e.g. a converted checkpoint's)")
    parser.add_argument("--image-size", type=int, help="square frame size to store")
    parser.add_argument(
        "--rounding",
        choices=("round", "floor"),
        help=f"label rule for untokenised actions (default: the model's, else {default_rounding})",
    )


def _topic_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = EpisodeTopics()
    parser.add_argument("--image-topic", default=defaults.image)
    parser.add_argument("--action-topic", default=defaults.action)
    parser.add_argument("--instruction-topic", default=defaults.instruction)


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
    _frame_arguments(build, "round")
    build.add_argument("--include-failed", action="store_true", help="keep episodes marked expert_success=false")
    build.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    build.add_argument(
        "--text-embeddings",
        help="an .npz of `instructions` and `embeddings` to take instruction embeddings from (e.g. USE large v5,"
        " computed elsewhere) instead of the built-in encoder",
    )
    build.add_argument(
        "--text-encoder-name", default=RLDS_TEXT_ENCODER, help="the name --text-embeddings' encoder is recorded under"
    )
    _topic_arguments(build)
    build.set_defaults(run=_build)
    rlds = commands.add_parser("import-rlds", help="turn RLDS (TFDS) shards of RT-1's action space into a dataset")
    rlds.add_argument("shards", nargs="+", help="TFRecord shards, TFDS dataset folders, or folders holding them")
    rlds.add_argument("--out", required=True, help="dataset directory to write")
    _frame_arguments(rlds, "floor")
    rlds.add_argument("--image-key", default="image", help="the camera under steps/observation/ (default: image)")
    rlds.add_argument("--fps", type=float, default=DEFAULT_FPS, help="step rate for the stamps (RT-1: 3 Hz)")
    rlds.add_argument("--max-episodes", type=int, help="stop after this many imported episodes")
    rlds.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    rlds.set_defaults(run=_import_rlds)
    export = commands.add_parser("export", help="write episodes (bags or a built dataset) in another format")
    export.add_argument("sources", nargs="+", help="built dataset directories, episode bags, or folders of bags")
    export.add_argument("--format", required=True, choices=("lerobot",), help="lerobot: LeRobotDataset v3.0")
    export.add_argument("--out", required=True, help="directory to write")
    export.add_argument("--fps", type=int, help="frames per second (default: the first episode's action rate)")
    export.add_argument("--codec", choices=sorted(CODECS), default="h264", help="video codec (default h264)")
    export.add_argument("--crf", type=int, default=VideoOptions.crf, help="constant rate factor (0: lossless codec)")
    export.add_argument("--gop", type=int, default=VideoOptions.gop, help="keyframe interval, frames")
    export.add_argument(
        "--pix-fmt",
        choices=("yuv420p", "yuv444p"),
        default=VideoOptions.pix_fmt,
        help="yuv420p (LeRobot's, plays everywhere) or yuv444p (keeps colour edges: near-lossless with --crf 0)",
    )
    export.add_argument("--robot-type", help="info.json's robot_type")
    export.add_argument(
        "--rounding", choices=("round", "floor"), default="round", help="label rule for untokenised bags"
    )
    export.add_argument("--overwrite", action="store_true", help="replace a LeRobot dataset already in --out")
    _topic_arguments(export)
    export.set_defaults(run=_export)
    info = commands.add_parser("info", help="describe a dataset")
    info.add_argument("dir")
    info.set_defaults(run=_info)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())

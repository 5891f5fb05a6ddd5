"""`rt-convert rt1-tf PATH --out DIR`: Google's TensorFlow RT-1 checkpoint -> config.json + model.safetensors.

PATH is a checkpoint prefix (e.g. `trained_checkpoints/rt1main/ckpt-424760`), a SavedModel's
`variables/` directory, or a directory holding one checkpoint. The architecture is read off the
variables' shapes; the action spec and token order are the TF reference's (tests/policies/test_rt1_parity.py).
"""

from __future__ import annotations

import argparse
import sys

from rt_policy_node.policies.rt1.model import RT1
from rt_policy_node.policies.rt1.tf_checkpoint import CheckpointError, read_tf_checkpoint
from rt_policy_node.policies.rt1.weights_tf import config_from_tf, state_dict_from_tf


def convert_rt1_tf(path: str, out: str, stem_normalization: bool = True) -> RT1:
    """Reads, maps and writes one checkpoint; returns the converted model."""
    variables = read_tf_checkpoint(path)
    config = config_from_tf(variables)
    model = RT1(config)
    model.load_weights(state_dict_from_tf(variables, config, stem_normalization), source=str(path))
    model.save_pretrained(out)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rt-convert", description="Convert policy checkpoints to this project's.")
    commands = parser.add_subparsers(dest="command", required=True)
    rt1 = commands.add_parser("rt1-tf", help="Google's TensorFlow RT-1 (robotics_transformer) checkpoint")
    rt1.add_argument("path", help="checkpoint prefix, SavedModel variables/ directory, or one-checkpoint directory")
    rt1.add_argument("--out", required=True, help="directory to write config.json and model.safetensors into")
    rt1.add_argument(
        "--no-stem-normalization",
        action="store_true",
        help="the TF network was built without ImageNet weights (EfficientNetEncoder.weights = None), so its "
        "Normalization layer never applied the stored ImageNet statistics (true of the shared reference data)",
    )
    args = parser.parse_args(argv)
    try:
        model = convert_rt1_tf(args.path, args.out, stem_normalization=not args.no_stem_normalization)
    except (CheckpointError, ValueError) as err:
        print(f"rt-convert: {err}", file=sys.stderr)
        return 1
    cfg = model.config
    params = sum(p.numel() for p in model.parameters())
    print(
        f"RT-1: EfficientNet-{cfg.efficientnet.upper()} at {cfg.image_size}x{cfg.image_size}, {cfg.num_layers} "
        f"layers, {cfg.time_steps} steps, {params / 1e6:.2f}M parameters -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Runs `rt-train`'s training under torchrun and saves this rank's weights, so a test can compare ranks."""

import os
import sys
from pathlib import Path

from safetensors.torch import save_file

from rt_policy_node.train.train import parse_args, train

if __name__ == "__main__":
    config, resume = parse_args(sys.argv[1:])
    model = train(config, resume)
    rank = os.environ["RANK"]
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, Path(config.out) / f"rank{rank}.safetensors")

"""TensorFlow checkpoint reading speed: the RT-1 reference checkpoint, checksums included. Prints seconds and MB/s."""

import statistics
import sys
import time
from pathlib import Path

from rt_policy_node.policies.rt1.tf_checkpoint import read_tf_checkpoint

DEFAULT = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "rt1_tf" / "tf_checkpoint" / "rt1_ref"


def main() -> None:
    prefix = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    times = []
    for _ in range(3):
        start = time.perf_counter()
        weights = read_tf_checkpoint(prefix)
        times.append(time.perf_counter() - start)
    megabytes = sum(a.nbytes for a in weights.values()) / 1e6
    best = min(times)
    print(f"{prefix}: {len(weights)} variables, {megabytes:.1f} MB")
    print(f"read + verify: best {best:.2f} s, median {statistics.median(times):.2f} s ({megabytes / best:.0f} MB/s)")


if __name__ == "__main__":
    main()

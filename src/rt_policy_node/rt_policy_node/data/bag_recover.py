"""rt-bag-recover: turns episodes a killed recorder left (no metadata.yaml) into finished, readable bags.

Each DIR is an episode directory or a directory of episodes (the recorder's output_dir). What recovery keeps
and where the original data goes is described in `rt_policy_node.data.bag_io.recover_episode`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rt_policy_node.data.bag_io import EPISODE_DIR, RecoveryError, recover_episode, unfinished_episodes


def episodes_under(path: Path) -> list[Path]:
    """`path` itself when it is an episode directory, else the unfinished episodes in it."""
    if EPISODE_DIR.match(path.name) or any(path.glob("*.mcap*")):
        return [path]
    return unfinished_episodes(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rt-bag-recover", description=__doc__.split("\n\n")[0])
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="an episode or a directory of episodes")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.dirs:
        if not path.is_dir():
            print(f"{path}: not a directory", file=sys.stderr)
            failed += 1
            continue
        episodes = episodes_under(path)
        if not episodes:
            print(f"{path}: no unfinished episode")
        for episode in episodes:
            try:
                print(recover_episode(episode).describe())
            except (RecoveryError, OSError) as err:
                print(f"{episode.name}: cannot recover: {err}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

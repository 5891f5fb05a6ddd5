"""What flushing the episode bag costs, what a kill loses with and without it, and how fast recovery runs.

1. Write cost: 640x480 rgb8 frames through `EpisodeWriter` as fast as the disk takes them, with rosbags'
   default (a chunk goes to disk when 1 MiB fills), with a flush every 3 frames (the recorder's 0.1 s at 30 Hz),
   and with a flush + fsync every 3 frames (survives a power cut). Compare against the 30 frames/s needed.
2. Loss at a kill: joint-state-sized messages at 30 Hz for 20 s (no camera), then the file as the OS holds it
   (what SIGKILL leaves) is recovered and counted, without and with the 0.1 s flush.
3. Recovery speed: a 640x480 episode cut in the middle of a chunk, recovered with `recover_episode`.

Run: scripts/with_env.sh python benchmarks/recorder_durability.py [--frames 300]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from rt_policy_node.data.bag_io import EpisodeInfo, EpisodeWriter, make_typestore, recover_episode

FLUSH_EVERY = 3  # messages at 30 Hz between the recorder's 0.1 s flushes
FRAME = (480, 640)


def serialized_frame(typestore) -> bytes:
    types = typestore.types
    header = types["std_msgs/msg/Header"](types["builtin_interfaces/msg/Time"](sec=1, nanosec=0), "camera")
    pixels = np.random.default_rng(0).integers(0, 255, FRAME[0] * FRAME[1] * 3, np.uint8)
    msg = types["sensor_msgs/msg/Image"](header, FRAME[0], FRAME[1], "rgb8", 0, FRAME[1] * 3, pixels)
    return bytes(typestore.serialize_cdr(msg, msg.__msgtype__))


def serialized_joint_state(typestore) -> bytes:
    types = typestore.types
    header = types["std_msgs/msg/Header"](types["builtin_interfaces/msg/Time"](sec=1, nanosec=0), "")
    zeros = np.zeros(9)
    msg = types["sensor_msgs/msg/JointState"](header, [f"joint_{i}" for i in range(9)], zeros, zeros, zeros)
    return bytes(typestore.serialize_cdr(msg, msg.__msgtype__))


def new_writer(root: Path, typestore, name: str) -> EpisodeWriter:
    return EpisodeWriter(root / name, typestore, EpisodeInfo(name, 0, "bench", "wall", 0.0))


def write_cost(root: Path, typestore, frames: int, repeats: int) -> None:
    data = serialized_frame(typestore)
    need = 30 * len(data) / 1e6
    print(
        f"1. write cost: {frames} frames of {len(data) / 1e6:.2f} MB, best of {repeats}; 30 frames/s is {need:.0f} MB/s"
    )
    for label, every, sync in (
        ("rosbags default (1 MiB chunks)", 0, False),
        (f"flush every {FLUSH_EVERY} frames", FLUSH_EVERY, False),
        (f"flush + fsync every {FLUSH_EVERY} frames", FLUSH_EVERY, True),
    ):
        runs = [write_run(root, typestore, data, frames, every, sync) for _ in range(repeats)]
        elapsed, flush_s = min(runs)
        flushes = frames // every if every else 0
        per_flush = f", {1e3 * flush_s / flushes:.2f} ms per flush" if flushes else ""
        rate = f"{frames / elapsed:5.0f} frames/s {frames * len(data) / elapsed / 1e6:5.0f} MB/s"
        print(f"   {label:38s} {rate}{per_flush}")


def write_run(root: Path, typestore, data: bytes, frames: int, every: int, sync: bool) -> tuple[float, float]:
    """Seconds to write and close the episode, and the seconds of that spent flushing."""
    writer = new_writer(root, typestore, "write")
    flush_s = 0.0
    start = time.perf_counter()
    for i in range(frames):
        writer.write("/camera/image_raw", "sensor_msgs/msg/Image", i * 33_333_333, data)
        if every and (i + 1) % every == 0:
            t = time.perf_counter()
            writer.flush(sync=sync)
            flush_s += time.perf_counter() - t
    writer.close("stopped", 1.0)
    elapsed = time.perf_counter() - start
    shutil.rmtree(writer.directory)
    return elapsed, flush_s


def loss_at_kill(root: Path, typestore) -> None:
    data = serialized_joint_state(typestore)
    count = 30 * 20 + FLUSH_EVERY - 1  # the kill comes just before a flush: the worst case
    print(f"2. loss at a kill after {count} joint states ({len(data)} bytes each, 30 Hz for 20 s, no camera)")
    for label, every in (
        ("rosbags default (1 MiB chunks)", 0),
        (f"flush every {FLUSH_EVERY} messages (0.1 s)", FLUSH_EVERY),
    ):
        writer = new_writer(root, typestore, f"loss_{every}")
        for i in range(count):
            writer.write("/joint_states", "sensor_msgs/msg/JointState", i * 33_333_333, data)
            if every and (i + 1) % every == 0:
                writer.flush()
        killed = root / f"killed_{every}"
        killed.mkdir()
        shutil.copy(writer.directory / f"{writer.directory.name}.mcap", killed / f"{killed.name}.mcap")
        writer.close("stopped", 1.0)
        kept = recover_episode(killed).message_counts.get("/joint_states", 0)
        print(f"   {label:38s} kept {kept:4d} of {count}, lost {count - kept} ({(count - kept) / 30:.1f} s)")


def recovery_speed(root: Path, typestore, frames: int) -> None:
    data = serialized_frame(typestore)
    writer = new_writer(root, typestore, "speed")
    for i in range(frames):
        writer.write("/camera/image_raw", "sensor_msgs/msg/Image", i * 33_333_333, data)
        if (i + 1) % FLUSH_EVERY == 0:
            writer.flush()
    bag = writer.directory / f"{writer.directory.name}.mcap"
    killed = root / "killed_speed"
    killed.mkdir()
    cut = bag.stat().st_size - len(data) // 2
    with bag.open("rb") as src, (killed / f"{killed.name}.mcap").open("wb") as dst:
        dst.write(src.read(cut))
    writer.close("stopped", 1.0)
    start = time.perf_counter()
    recovery = recover_episode(killed)
    elapsed = time.perf_counter() - start
    kept = recovery.message_counts["/camera/image_raw"]
    print(
        f"3. recovery of a {cut / 1e6:.0f} MB episode cut mid-chunk: {elapsed:.2f} s ({cut / elapsed / 1e6:.0f} MB/s, "
        f"read, rewrite and read back), kept {kept} of {frames} frames"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=300, help="640x480 frames per write run (10 s at 30 Hz)")
    parser.add_argument("--repeats", type=int, default=3, help="write runs per mode; the fastest is reported")
    args = parser.parse_args()
    typestore = make_typestore()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_cost(root, typestore, args.frames, args.repeats)
        loss_at_kill(root, typestore)
        recovery_speed(root, typestore, args.frames)


if __name__ == "__main__":
    main()

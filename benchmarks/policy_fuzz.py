"""Fuzzing rt_policy: malformed camera frames and instructions against the running node. Prints figures.

The node runs as its own process with a constant policy. This process sends it, in random order: raw frames
with random fields (sizes, steps, encodings known and unknown, byte orders, data lengths), compressed frames
(random bytes, truncated JPEG/PNG, GIF, and PNGs whose header claims up to 8000x8000 in a few KB), and
instructions that must be refused (no letter or digit, mostly control/format/private-use characters, over-long)
between valid ones. Then: is the node alive, does it act on a good frame, did any bad instruction start an
episode, how much memory did it take (resident set), and what did its statuses say.

Run: scripts/with_env.sh python benchmarks/policy_fuzz.py [--messages 3000]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
from ament_index_python.packages import get_package_share_directory

os.environ.setdefault(
    "FASTDDS_DEFAULT_PROFILES_FILE", f"{get_package_share_directory('rt_bringup')}/config/fastdds_large_data.xml"
)
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import rclpy
from PIL import Image as PILImage
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import String

from rt_msgs.msg import PolicyStatus, RTAction
from rt_policy_node.images import SUPPORTED_ENCODINGS, ImageError, check_compressed, compressed_to_rgb
from rt_policy_node.policies.constant import ConstantPolicy, ConstantPolicyConfig
from rt_policy_node.ros.policy_node import DEFAULT_MAX_IMAGE_PIXELS
from rt_policy_node.ros.qos import LATCHED, SENSOR_DATA

# No NUL: a ROS string ends at the first one, so "a\x00..." arrives as "a", a (short) instruction.
NOISE = ["\ufffd", "\x7f", "\u200b", "\u200d", "\u2060", "\ue000", "\uf8ff", "\U000f0001", "\x1b", "\ufeff"]
KEEP = QoSProfile(depth=10000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def resident_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), (90, 20, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def header_ms(payload: bytes) -> float:
    """Milliseconds rt_policy spends refusing `payload` under its default limit (median of 20)."""
    times = []
    for _ in range(20):
        start = time.perf_counter()
        try:
            check_compressed("png", payload, DEFAULT_MAX_IMAGE_PIXELS)
        except ImageError:
            times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times))


def decode_ms(payload: bytes) -> float:
    start = time.perf_counter()
    compressed_to_rgb("png", payload, 2**31 - 1)
    return (time.perf_counter() - start) * 1e3


def raw_frame(rng: random.Random) -> Image:
    encoding = rng.choice([*SUPPORTED_ENCODINGS, "yuv444", "16UC1", "", "rgb8 ", "RGB8", "bayer_xyz8"])
    height = rng.choice([0, 1, 2, 3, 7, 64, 480, 2**31 - 1, 2**32 - 1])
    width = rng.choice([0, 1, 2, 5, 64, 640, 2**31 - 1, 2**32 - 1])
    step = rng.choice([0, width, width * 2, width * 3 + 1, rng.randrange(0, 4096), 2**32 - 1]) % 2**32
    msg = Image(height=height, width=width, encoding=encoding, step=step, is_bigendian=rng.randrange(256))
    size = rng.choice([0, 1, min(height * step, 1 << 20), rng.randrange(0, 8192)])
    msg.data = rng.randbytes(size)
    return msg


def compressed_frame(rng: random.Random, payloads: dict[str, bytes]) -> CompressedImage:
    kind = rng.choice([*payloads, "random"])
    data = rng.randbytes(rng.randrange(0, 2048)) if kind == "random" else payloads[kind]
    if kind != "random" and rng.random() < 0.3:
        data = data[: rng.randrange(0, len(data))]
    return CompressedImage(format=rng.choice(["png", "jpeg", "rgb8; jpeg compressed bgr8", "tiff", ""]), data=data)


def bad_instruction(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:  # no letter or digit
        return "".join(rng.choice([*NOISE, " ", "!", "…", "★", "-"]) for _ in range(rng.randrange(1, 40)))
    if kind == 1:  # a letter drowned in noise
        return "a" + "".join(rng.choice(NOISE[1:]) for _ in range(rng.randrange(2, 40)))
    return "x" * rng.randrange(1001, 5000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000, help="malformed messages in all")
    parser.add_argument("--seed", type=int, default=0)
    options = parser.parse_args()
    rng = random.Random(options.seed)
    payloads = {f"png {w}x{h}": png(w, h) for w, h in ((16, 12), (4000, 4000), (8000, 8000), (1921, 1200))}
    jpeg = io.BytesIO()
    PILImage.new("RGB", (32, 24), (1, 2, 3)).save(jpeg, format="JPEG")
    gif = io.BytesIO()
    PILImage.new("RGB", (32, 24)).save(gif, format="GIF")
    payloads |= {"jpeg": jpeg.getvalue(), "gif": gif.getvalue()}
    with tempfile.TemporaryDirectory() as tmp:
        ConstantPolicy(ConstantPolicyConfig(world_vector=[0.1, 0.0, 0.0])).save_pretrained(Path(tmp, "policy"))
        log = Path(tmp, "rt_policy.log")
        processes = []
        for compressed in ("false", "true"):
            command = ["rt_policy", "--ros-args", "-p", f"policy_path:={tmp}/policy", "-p", "control_rate_hz:=10.0",
                       "-p", "max_image_age_s:=60.0", "-p", f"use_compressed_image:={compressed}",
                       "-r", f"__ns:=/fuzz_{compressed}"]  # fmt: skip
            processes.append(subprocess.Popen(command, stdout=log.open("a"), stderr=subprocess.STDOUT))
        try:
            figures = fuzz(processes, options.messages, rng, payloads)
        finally:
            for process in processes:
                process.send_signal(2)
                process.wait(timeout=30)
        output = log.read_text()
    sent, accepted, alive, acted, memory, reasons = figures
    print(
        f"rt_policy fuzzed with {sum(sent.values())} malformed messages: "
        + ", ".join(f"{v} {k}" for k, v in sent.items())
    )
    print(f"  node alive afterwards:                  {alive}/2")
    print(f"  acts on a good frame afterwards:        {acted}/2")
    print(f"  bad instructions that started episodes: {accepted}")
    print(f"  tracebacks in the output:               {output.count('Traceback')}")
    print(f"  exit status after SIGINT:               {[p.returncode for p in processes]}")
    print(f"  resident memory (MB), raw / compressed: {memory}")
    big = payloads["png 4000x4000"]
    print(
        f"  a {len(big) / 1000:.0f} KB PNG of 4000x4000: refused from its header in {header_ms(big):.2f} ms"
        f" (decoding it: {decode_ms(big):.0f} ms)"
    )
    print("  distinct reasons in the statuses (count):")
    for reason, count in reasons.most_common(12):
        print(f"    {count:5}  {reason[:100]}")
    return 0


def fuzz(processes, messages: int, rng: random.Random, payloads: dict[str, bytes]):
    rclpy.init()
    node = rclpy.create_node("policy_fuzz_benchmark")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    threading.Thread(target=executor.spin, daemon=True).start()
    try:
        channels = []
        for compressed in (False, True):
            ns = f"/fuzz_{str(compressed).lower()}"
            statuses: list[PolicyStatus] = []
            actions: list[RTAction] = []
            node.create_subscription(PolicyStatus, f"{ns}/rt/status", statuses.append, KEEP)
            node.create_subscription(RTAction, f"{ns}/rt/action", actions.append, 10000)
            topic, kind = (f"{ns}/camera/image_raw/compressed", CompressedImage) if compressed else (
                f"{ns}/camera/image_raw", Image)  # fmt: skip
            images = node.create_publisher(kind, topic, SENSOR_DATA)
            instructions = node.create_publisher(String, f"{ns}/rt/instruction", LATCHED)
            channels.append((compressed, statuses, actions, images, instructions))
        deadline = time.monotonic() + 60
        while not all(c[3].get_subscription_count() and c[1] for c in channels):
            if time.monotonic() > deadline:
                raise RuntimeError("rt_policy did not come up")
            time.sleep(0.1)
        for _, _, _, _, instructions in channels:
            instructions.publish(String(data="pick up the red cube"))
        time.sleep(0.5)
        memory = [round(resident_mb(p.pid)) for p in processes]
        sent: Counter[str] = Counter()
        for i in range(messages):
            compressed, _, _, images, instructions = channels[i % 2]
            if rng.random() < 0.15:
                instructions.publish(String(data=bad_instruction(rng)))
                sent["instructions"] += 1
                time.sleep(0.005)  # latched, depth 1: give each time to arrive before the next replaces it
            else:
                images.publish(compressed_frame(rng, payloads) if compressed else raw_frame(rng))
                sent["compressed frames" if compressed else "raw frames"] += 1
            time.sleep(0.001)
        time.sleep(2.0)
        memory = [f"{before} -> {round(resident_mb(p.pid))}" for before, p in zip(memory, processes, strict=True)]
        alive = sum(p.poll() is None for p in processes)
        acted = 0
        for compressed, _, actions, images, _ in channels:
            count = len(actions)
            good = CompressedImage(format="png", data=payloads["png 16x12"]) if compressed else Image(
                height=12, width=16, encoding="rgb8", step=48, data=bytes(576))  # fmt: skip
            for _ in range(20):
                images.publish(good)
                time.sleep(0.05)
            acted += len(actions) > count
        accepted = sum(max(s.episode_id for s in c[1]) - 1 for c in channels)
        reasons = Counter(re.sub(r"\d+", "N", s.message) for c in channels for s in c[1])
        return sent, accepted, alive, acted, memory, reasons
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())

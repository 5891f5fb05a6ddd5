"""Latency rt_policy adds around inference, and the cost of its image conversion. Prints figures.

1. Node path: rt_policy runs as its own process on sim time with a constant policy. For each trial a
   640x480 rgb8 frame is published, then /clock is moved across the next control tick; the time from
   that clock message to the RTAction arriving here, minus the inference time the action reports, is
   what the node adds: timer dispatch, hand-off to the worker, image conversion and publishing, plus
   two small-message DDS hops (clock in, action out).
2. Conversion: `image_to_rgb` (views where the layout allows) against a copying conversion (bytes ->
   array -> reshape -> channel reorder, as a cv_bridge-style path does), per encoding.

Run: scripts/with_env.sh python benchmarks/ros_latency.py [--trials 100]
640x480 best-effort frames need the large-data Fast DDS profile (config/fastdds_large_data.xml); it is
used unless FASTDDS_DEFAULT_PROFILES_FILE is already set.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from ament_index_python.packages import get_package_share_directory

os.environ.setdefault(
    "FASTDDS_DEFAULT_PROFILES_FILE", f"{get_package_share_directory('rt_bringup')}/config/fastdds_large_data.xml"
)
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")

import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image
from std_msgs.msg import String

from rt_msgs.msg import RTAction
from rt_policy_node.images import ENCODINGS, image_to_rgb
from rt_policy_node.policies.constant import ConstantPolicy, ConstantPolicyConfig
from rt_policy_node.ros.conversions import seconds_to_stamp
from rt_policy_node.ros.qos import LATCHED, SENSOR_DATA

WIDTH, HEIGHT = 640, 480
RATE_HZ = 10.0


def copying_conversion(height: int, width: int, encoding: str, step: int, data: bytes) -> np.ndarray:
    """The baseline: copy the bytes into an array, then build a new RGB array from it."""
    pixel_bytes, channels = ENCODINGS[encoding]
    pixels = np.array(bytearray(data), np.uint8).reshape(height, step)[:, : width * pixel_bytes]
    pixels = pixels.reshape(height, width, pixel_bytes).copy()
    if encoding == "mono8":
        return np.dstack([pixels[..., 0]] * 3)
    return np.ascontiguousarray(pixels[..., channels[0] :: -1]) if channels else pixels[..., :3].copy()


def time_call(fn, repeats: int) -> float:
    """Median milliseconds per call."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return float(np.median(samples))


def conversion_figures(repeats: int) -> None:
    print(f"image conversion, {WIDTH}x{HEIGHT}, median of {repeats} (ms):")
    print(f"  {'encoding':8} {'image_to_rgb':>13} {'copying':>9}  no copy")
    for encoding, (pixel_bytes, _) in ENCODINGS.items():
        step = WIDTH * pixel_bytes
        data = np.random.default_rng(0).integers(0, 256, HEIGHT * step, np.uint8).tobytes()
        fields = (HEIGHT, WIDTH, encoding, step, data)
        ours = time_call(lambda f=fields: image_to_rgb(*f), repeats)
        theirs = time_call(lambda f=fields: copying_conversion(*f), repeats)
        shares = np.shares_memory(image_to_rgb(*fields), np.frombuffer(data, np.uint8))
        print(f"  {encoding:8} {ours:13.3f} {theirs:9.3f}  {'yes' if shares else 'no'}")


def node_path_figures(trials: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        policy_dir = Path(tmp, "policy")
        ConstantPolicy(ConstantPolicyConfig(world_vector=[0.1, 0.0, 0.0])).save_pretrained(policy_dir)
        node = subprocess.Popen(
            [
                "rt_policy",
                "--ros-args",
                "-p", f"policy_path:={policy_dir}",
                "-p", f"control_rate_hz:={RATE_HZ}",
                "-p", "use_sim_time:=true",
                "-p", "max_image_age_s:=60.0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            latencies, inference = measure_node_path(trials)
        finally:
            node.send_signal(2)
            node.wait(timeout=15)
    added = np.array(latencies) - np.array(inference)
    print(f"rt_policy node path, {WIDTH}x{HEIGHT} rgb8, {len(added)} ticks (ms):")
    print(
        f"  clock tick -> RTAction received: median {np.median(latencies):.3f}, p95 {np.percentile(latencies, 95):.3f}"
    )
    print(f"  inference (constant policy):     median {np.median(inference):.3f}")
    print(
        f"  added by the node (incl. 2 DDS hops): median {np.median(added):.3f}, "
        f"p95 {np.percentile(added, 95):.3f}, max {added.max():.3f}"
    )


def measure_node_path(trials: int) -> tuple[list[float], list[float]]:
    rclpy.init()
    probe = rclpy.create_node("ros_latency_benchmark")
    executor = SingleThreadedExecutor()
    executor.add_node(probe)
    received: dict[int, tuple[float, float]] = {}

    def on_action(msg: RTAction) -> None:
        received[msg.header.stamp.sec] = (time.perf_counter(), msg.inference_ms)

    probe.create_subscription(RTAction, "rt/action", on_action, QoSProfile(depth=100))
    clock = probe.create_publisher(Clock, "/clock", 10)
    images = probe.create_publisher(Image, "camera/image_raw", SENSOR_DATA)
    instruction = probe.create_publisher(String, "rt/instruction", LATCHED)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        deadline = time.monotonic() + 30
        while images.get_subscription_count() < 1 or clock.get_subscription_count() < 1:
            if time.monotonic() > deadline:
                raise RuntimeError("rt_policy did not come up")
            time.sleep(0.05)
        instruction.publish(String(data="benchmark"))
        frame = Image(height=HEIGHT, width=WIDTH, encoding="rgb8", step=WIDTH * 3)
        frame.data = bytes(HEIGHT * WIDTH * 3)
        latencies, inference = [], []
        # Sim time: trial k publishes frame k at k seconds, then moves the clock across the tick at k + 0.05 s.
        for k in range(1, trials + 11):
            now = float(k)
            clock.publish(Clock(clock=seconds_to_stamp(now)))
            frame.header.stamp = seconds_to_stamp(now)
            frame.header.stamp.sec = k
            images.publish(frame)
            time.sleep(0.03)
            start = time.perf_counter()
            clock.publish(Clock(clock=seconds_to_stamp(now + 1.0 / RATE_HZ / 2 + 0.06)))
            while k not in received and time.perf_counter() - start < 2.0:
                time.sleep(0.0001)
            if k in received and k > 10:  # the first ten warm up discovery and caches
                arrived, inference_ms = received[k]
                latencies.append((arrived - start) * 1e3)
                inference.append(inference_ms)
        return latencies, inference
    finally:
        executor.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=200, help="timing repeats per conversion")
    options = parser.parse_args()
    conversion_figures(options.repeats)
    node_path_figures(options.trials)
    return 0


if __name__ == "__main__":
    sys.exit(main())

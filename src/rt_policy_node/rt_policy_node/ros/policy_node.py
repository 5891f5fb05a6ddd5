"""rt_policy: runs a `Policy` on the newest camera frame at a fixed rate; publishes RTAction and PolicyStatus.

Inference runs in one worker thread so the executor keeps serving callbacks; a control tick that finds
the worker still busy is skipped and counted, never queued. The node does inference only: what the
robot does with an action is rt_action_executor's business.
"""

from __future__ import annotations

import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool, String

from rt_msgs.msg import PolicyStatus, RTAction
from rt_policy_node.images import (
    ImageError,
    check_compressed,
    check_image,
    compressed_to_rgb,
    image_to_rgb,
)
from rt_policy_node.instructions import validate_instruction
from rt_policy_node.parameters import Parameter
from rt_policy_node.policies.policy import Mode, action_is_finite, load_policy
from rt_policy_node.process_settings import configure_cpu_inference
from rt_policy_node.ros.conversions import action_to_msg, stamp_to_seconds
from rt_policy_node.ros.node_main import run_node
from rt_policy_node.ros.params import declare_all
from rt_policy_node.ros.qos import LATCHED, RELIABLE, SENSOR_DATA

WARN_THROTTLE_S = 5.0
# 1920x1200, the largest frame of common robot cameras. RT-1 sees 300x300 and RT-2's backbones at most about 1k
# pixels a side, so more pixels would only cost decoding time and memory (a 47 KB PNG can hold 16 megapixels).
DEFAULT_MAX_IMAGE_PIXELS = 1920 * 1200
RATE_WINDOW_S = 3.0

PARAMETERS = (
    Parameter("policy_path", "", "Checkpoint directory (config.json [+ weights]) to load", read_only=True),
    Parameter("device", "cpu", "Torch device the policy runs on, e.g. cpu or cuda:0", read_only=True),
    Parameter("control_rate_hz", 3.0, "Control ticks per second", low=0.1, high=100.0, read_only=True),
    Parameter("max_image_age_s", 0.5, "No new camera frame for this long stops the actions", low=0.01, high=60.0),
    Parameter(
        "use_compressed_image",
        False,
        "Read camera/image_raw/compressed (JPEG/PNG) instead of camera/image_raw",
        read_only=True,
    ),
    Parameter(
        "max_instruction_length",
        1000,
        "Longer instructions are rejected (characters)",
        low=1,
        high=100_000,
        read_only=True,
    ),
    Parameter(
        "max_image_pixels",
        DEFAULT_MAX_IMAGE_PIXELS,
        "Larger camera frames are dropped before they are decoded (raw: from their fields; JPEG/PNG: their header)",
        low=1,
        high=2**31 - 1,
        read_only=True,
    ),
    Parameter("frame_id", "base_link", "header.frame_id of published actions", read_only=True),
    Parameter("instruction", "", "Instruction to start with; empty waits for rt/instruction", read_only=True),
)


@dataclass(frozen=True)
class Frame:
    """The newest accepted camera message and when it arrived (node clock, ns)."""

    msg: Image | CompressedImage
    received_ns: int


class PolicyNode(Node):
    """Image + instruction in, one RTAction per control tick out."""

    def __init__(self) -> None:
        super().__init__("rt_policy")
        # First: destroy_node shuts it down, even on a node whose construction failed below.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rt_policy_inference")
        p = declare_all(self, PARAMETERS)
        policy_path, device = p["policy_path"], p["device"]
        self.max_instruction_length = p["max_instruction_length"]
        self.max_image_pixels = p["max_image_pixels"]
        self.frame_id = p["frame_id"]
        if not policy_path:
            raise ValueError("parameter 'policy_path' is empty: give the checkpoint directory to load")
        if device.split(":")[0] == "cpu":
            configure_cpu_inference()
        self.policy = load_policy(policy_path, device=device)
        self.get_logger().info(f"loaded {type(self.policy).__name__} from {policy_path} on {device}")

        self._lock = threading.Lock()
        self._inference: Future | None = None
        self._frame: Frame | None = None
        self._dropped_images = 0
        self._active = False
        self._estop = False
        self._state_before_estop = PolicyStatus.IDLE
        self._status = PolicyStatus(state=PolicyStatus.IDLE, message="waiting for an instruction on rt/instruction")
        self._publish_times: deque[int] = deque()

        self.action_pub = self.create_publisher(RTAction, "rt/action", RELIABLE)
        self.status_pub = self.create_publisher(PolicyStatus, "rt/status", LATCHED)
        if p["use_compressed_image"]:
            self.create_subscription(CompressedImage, "camera/image_raw/compressed", self.on_compressed, SENSOR_DATA)
        else:
            self.create_subscription(Image, "camera/image_raw", self.on_image, SENSOR_DATA)
        self.create_subscription(String, "rt/instruction", self.on_instruction, LATCHED)
        self.create_subscription(Bool, "rt/estop", self.on_estop, RELIABLE)
        self.create_timer(1.0 / p["control_rate_hz"], self.on_tick)
        self._publish_status()
        if p["instruction"]:
            self.on_instruction(String(data=p["instruction"]))

    # -- inputs ---------------------------------------------------------------------------------

    def on_image(self, msg: Image) -> None:
        try:
            check_image(msg.height, msg.width, msg.encoding, msg.step, len(msg.data), self.max_image_pixels)
        except ImageError as err:
            self._drop_image(str(err))
            return
        with self._lock:
            self._frame = Frame(msg, self.get_clock().now().nanoseconds)

    def on_compressed(self, msg: CompressedImage) -> None:
        try:
            check_compressed(msg.format, msg.data, self.max_image_pixels)
        except ImageError as err:
            self._drop_image(str(err))
            return
        with self._lock:
            self._frame = Frame(msg, self.get_clock().now().nanoseconds)

    def on_instruction(self, msg: String) -> None:
        try:
            text = validate_instruction(msg.data, self.max_instruction_length)
        except ValueError as err:
            self._reject_instruction(str(err))
            return
        with self._lock:
            status = self._status
            status.episode_id += 1
            status.instruction = text
            status.step = 0
            status.skipped_ticks = 0
            self._active = True
            self._publish_times.clear()
            self._set_state(PolicyStatus.ESTOPPED if self._estop else PolicyStatus.RUNNING, "new instruction")
            self._worker.submit(self._reset_policy, status.episode_id, text)
        self.get_logger().info(f"episode {status.episode_id}: {text!r}")

    def on_estop(self, msg: Bool) -> None:
        with self._lock:
            if msg.data == self._estop:
                return
            self._estop = msg.data
            if msg.data:
                self._state_before_estop = self._status.state
                self._set_state(PolicyStatus.ESTOPPED, "emergency stop on rt/estop")
            else:
                resumed = PolicyStatus.RUNNING if self._active else self._state_before_estop
                self._set_state(resumed, "emergency stop released")

    # -- control tick ---------------------------------------------------------------------------

    def on_tick(self) -> None:
        with self._lock:
            if self._active and not self._estop:
                self._start_inference()
            self._status.control_rate_hz = self._achieved_rate()
            self._publish_status()

    def _start_inference(self) -> None:
        if self._inference is not None and not self._inference.done():
            self._status.skipped_ticks += 1
            return
        now = self.get_clock().now().nanoseconds
        max_age = self.get_parameter("max_image_age_s").value
        if self._frame is None:
            self._set_state(PolicyStatus.STOPPED_STALE_INPUT, "no camera frame received yet")
            return
        age = (now - self._frame.received_ns) * 1e-9
        if age > max_age:
            self._set_state(
                PolicyStatus.STOPPED_STALE_INPUT, f"no new camera frame for {age:.2f} s (max_image_age_s {max_age})"
            )
            return
        if self._status.state == PolicyStatus.STOPPED_STALE_INPUT:
            self._set_state(PolicyStatus.RUNNING, "camera frames arriving again")
        self._inference = self._worker.submit(self._infer, self._status.episode_id, self._frame)

    def _infer(self, episode_id: int, frame: Frame) -> None:
        """Worker thread: decode the frame, run the policy, publish the action if the episode is still on."""
        try:
            image = self._to_rgb(frame.msg)
        except ImageError as err:
            with self._lock:
                if self._frame is frame:
                    self._frame = None
            self._drop_image(str(err))
            return
        try:
            action = self.policy.act(image, stamp_to_seconds(frame.msg.header.stamp))
            finite = action_is_finite(action)
            msg = action_to_msg(action, frame.msg.header.stamp, "", self.frame_id)
        except Exception as err:
            self._fail(episode_id, f"policy.act failed or returned a malformed action: {err!r}")
            return
        if not finite:
            self._fail(episode_id, "policy returned a non-finite action; dropped")
            return
        with self._lock:
            status = self._status
            if episode_id != status.episode_id or not self._active or self._estop:
                return
            msg.instruction = status.instruction
            self.action_pub.publish(msg)
            status.step += 1
            status.last_inference_ms = float(action.inference_ms)
            self._publish_times.append(self.get_clock().now().nanoseconds)
            if action.mode == Mode.TERMINATE:
                self._active = False
                self._set_state(PolicyStatus.TERMINATED, f"policy predicted terminate after {status.step} steps")
            elif status.state == PolicyStatus.ERROR:
                self._set_state(PolicyStatus.RUNNING, "policy recovered")
            else:
                self._publish_status()

    def _to_rgb(self, msg: Image | CompressedImage) -> np.ndarray:
        if isinstance(msg, CompressedImage):
            return compressed_to_rgb(msg.format, msg.data, self.max_image_pixels)
        return image_to_rgb(msg.height, msg.width, msg.encoding, msg.step, msg.data, bool(msg.is_bigendian))

    def _reset_policy(self, episode_id: int, instruction: str) -> None:
        try:
            self.policy.reset(instruction)
        except Exception as err:
            self._fail(episode_id, f"policy.reset failed: {err!r}")
            # Acting on the previous instruction's state while reporting the new one would be worse than nothing.
            with self._lock:
                if episode_id == self._status.episode_id:
                    self._active = False

    # -- status ---------------------------------------------------------------------------------

    def _fail(self, episode_id: int, reason: str) -> None:
        self.get_logger().error(reason, throttle_duration_sec=WARN_THROTTLE_S)
        with self._lock:
            if episode_id == self._status.episode_id and self._active:
                self._set_state(PolicyStatus.ERROR, reason)

    def _drop_image(self, reason: str) -> None:
        self._dropped_images += 1
        self.get_logger().warning(
            f"dropped camera image ({self._dropped_images} so far): {reason}", throttle_duration_sec=WARN_THROTTLE_S
        )
        with self._lock:
            self._set_message(f"dropped camera image: {reason}")

    def _reject_instruction(self, reason: str) -> None:
        self.get_logger().warning(f"rejected instruction: {reason}")
        with self._lock:
            self._set_message(f"rejected instruction: {reason}")

    def _set_state(self, state: str, message: str) -> None:
        if (state, message) != (self._status.state, self._status.message):
            self._status.state = state
            self._status.message = message
            self._publish_status()

    def _set_message(self, message: str) -> None:
        self._set_state(self._status.state, message)

    def _achieved_rate(self) -> float:
        times = self._publish_times
        horizon = self.get_clock().now().nanoseconds - int(RATE_WINDOW_S * 1e9)
        while times and times[0] < horizon:
            times.popleft()
        return (len(times) - 1) / ((times[-1] - times[0]) * 1e-9) if len(times) > 1 and times[-1] > times[0] else 0.0

    def _publish_status(self) -> None:
        self._status.header.stamp = self.get_clock().now().to_msg()
        self.status_pub.publish(self._status)

    def destroy_node(self) -> None:
        self._worker.shutdown(wait=True, cancel_futures=True)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(PolicyNode, args)

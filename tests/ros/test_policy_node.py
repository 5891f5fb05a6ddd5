"""rt_policy as a real process over real DDS, driven by a simulated clock and a constant policy."""

from __future__ import annotations

import io
import time
from types import SimpleNamespace

import numpy as np
import pytest
from harness import SimClock, wait_for
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage
from rcl_interfaces.srv import DescribeParameters, SetParameters
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Bool, String

from rt_msgs.msg import PolicyStatus, RTAction
from rt_policy_node.images import pixel_bytes
from rt_policy_node.policies.constant import ConstantPolicy, ConstantPolicyConfig
from rt_policy_node.ros.conversions import seconds_to_stamp, stamp_to_seconds
from rt_policy_node.ros.qos import LATCHED, RELIABLE, SENSOR_DATA

RATE_HZ = 5.0
# The probe keeps every message, so no status or action goes missing between two looks.
KEEP = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)


def make_image(stamp: float, encoding: str = "rgb8", width: int = 16, height: int = 12) -> Image:
    size = pixel_bytes(encoding)
    msg = Image(height=height, width=width, encoding=encoding, step=width * size)
    msg.header.stamp = seconds_to_stamp(stamp)
    msg.data = bytes(height * width * size)
    return msg


@pytest.fixture
def policy_dir(tmp_path):
    def make(**config) -> str:
        path = tmp_path / "policy"
        ConstantPolicy(ConstantPolicyConfig(**config)).save_pretrained(path)
        return str(path)

    return make


@pytest.fixture
def rig(probe, launch, policy_dir):
    """Starts rt_policy on sim time; returns its process, the clock, publishers and what it published."""

    def start(policy: dict | None = None, **params):
        path = policy_dir(**(policy or {"world_vector": [0.5, 0.0, -0.25], "gripper_closedness": 1.0}))
        params = {"policy_path": path, "control_rate_hz": RATE_HZ, "use_sim_time": True, **params}
        node = launch("rt_policy", "rt_policy", config="policy.yaml", params=params)
        actions = probe.collect(RTAction, "rt/action", 1000)
        statuses = probe.collect(PolicyStatus, "rt/status", KEEP)
        clock = SimClock(probe)
        topic = "camera/image_raw/compressed" if params.get("use_compressed_image") else "camera/image_raw"
        images = probe.publisher(CompressedImage if "compressed" in topic else Image, topic, SENSOR_DATA)
        instructions = probe.publisher(String, "rt/instruction", LATCHED)
        probe.wait_for_subscribers(images)
        wait_for(lambda: statuses, what="the first status")
        return SimpleNamespace(
            node=node, clock=clock, images=images, instructions=instructions, actions=actions, statuses=statuses
        )

    return start


def stream_images(clock: SimClock, images, seconds: float, make=make_image) -> list[float]:
    """Advances sim time by `seconds`, publishing an image stamped with the sim time every 50 ms."""
    stamps: list[float] = []

    def publish(now: float) -> None:
        if round(now * 100) % 5 == 0:
            images.publish(make(now))
            stamps.append(round(now, 6))

    clock.advance(seconds, every_step=publish)
    return stamps


def test_image_and_instruction_give_actions_at_the_control_rate(rig):
    r = rig()
    stream_images(r.clock, r.images, 1.0)
    assert not r.actions, "no action may be published before an instruction"
    assert r.statuses[-1].state == PolicyStatus.IDLE
    r.instructions.publish(String(data="  pick up the red cube "))
    wait_for(lambda: r.statuses[-1].state == PolicyStatus.RUNNING, what="state running")
    first = r.clock.now
    stamps = stream_images(r.clock, r.images, 3.0)
    wait_for(lambda: len(r.actions) >= 10, what="ten actions")
    # Ticks fire on sim time: 3 s at 5 Hz is 15 ticks, give or take the ones around the edges.
    assert 12 <= len(r.actions) <= 16
    for action in r.actions:
        assert action.instruction == "pick up the red cube"
        assert action.mode == RTAction.ARM
        np.testing.assert_allclose(action.world_vector, [0.5, 0.0, -0.25])
        assert action.gripper_closedness == 1.0
        assert action.header.frame_id == "base_link"
        assert round(stamp_to_seconds(action.header.stamp), 6) in stamps
    action_stamps = [stamp_to_seconds(a.header.stamp) for a in r.actions]
    assert action_stamps == sorted(action_stamps) and action_stamps[0] >= first
    last = r.statuses[-1]
    assert (last.state, last.episode_id, last.instruction) == (PolicyStatus.RUNNING, 1, "pick up the red cube")
    assert last.step == len(r.actions)
    assert 3.5 <= last.control_rate_hz <= 6.5
    assert r.node.alive()


def test_terminate_ends_the_episode_until_a_new_instruction(rig):
    r = rig(policy={"mode": 2, "steps": 3})
    r.instructions.publish(String(data="drive to the table"))
    stream_images(r.clock, r.images, 2.0)
    wait_for(lambda: r.statuses[-1].state == PolicyStatus.TERMINATED, what="state terminated")
    assert [a.mode for a in r.actions] == [RTAction.BASE, RTAction.BASE, RTAction.TERMINATE]
    stream_images(r.clock, r.images, 1.0)
    assert len(r.actions) == 3, "no actions after terminate"
    r.instructions.publish(String(data="drive back"))
    stream_images(r.clock, r.images, 2.0)
    wait_for(lambda: len(r.actions) == 6, what="the second episode's three actions")
    assert [a.instruction for a in r.actions[3:]] == ["drive back"] * 3
    assert r.statuses[-1].episode_id == 2 and r.statuses[-1].state == PolicyStatus.TERMINATED


def test_stale_camera_stops_actions_and_says_why(rig):
    r = rig()
    r.instructions.publish(String(data="open the drawer"))
    stream_images(r.clock, r.images, 1.0)
    wait_for(lambda: r.actions, what="an action")
    r.clock.advance(1.0)
    wait_for(lambda: r.statuses[-1].state == PolicyStatus.STOPPED_STALE_INPUT, what="state stopped_stale_input")
    assert "no new camera frame" in r.statuses[-1].message
    count = len(r.actions)
    r.clock.advance(1.0)
    assert len(r.actions) <= count + 1, "at most the tick in flight when the camera stopped"
    count = len(r.actions)
    stream_images(r.clock, r.images, 1.0)
    wait_for(lambda: len(r.actions) > count, what="actions after the camera came back")
    assert r.statuses[-1].state == PolicyStatus.RUNNING


def test_estop_stops_actions_until_released(probe, rig):
    r = rig()
    estop = probe.publisher(Bool, "rt/estop", RELIABLE)
    probe.wait_for_subscribers(estop)
    r.instructions.publish(String(data="wipe the table"))
    stream_images(r.clock, r.images, 1.0)
    wait_for(lambda: r.actions, what="an action")
    estop.publish(Bool(data=True))
    wait_for(lambda: r.statuses[-1].state == PolicyStatus.ESTOPPED, what="state estopped")
    count = len(r.actions)
    stream_images(r.clock, r.images, 1.0)
    assert len(r.actions) <= count + 1
    estop.publish(Bool(data=False))
    count = len(r.actions)
    stream_images(r.clock, r.images, 1.0)
    wait_for(lambda: len(r.actions) > count, what="actions after release")


def test_bad_instructions_are_rejected_with_a_status(rig):
    r = rig()
    r.instructions.publish(String(data=" \t\n "))
    wait_for(lambda: "rejected instruction" in r.statuses[-1].message, what="a rejection status")
    r.instructions.publish(String(data="x" * 1001))
    wait_for(lambda: "1001 characters" in r.statuses[-1].message, what="a rejection of the long instruction")
    # Latched with depth 1: each is waited for or given time, so none is replaced by the next before it arrives.
    r.instructions.publish(String(data="\ufffd" * 8))
    wait_for(lambda: r.statuses[-1].message.endswith("no letter or digit"), what="a rejection of U+FFFDs")
    for garbage in ("\x7f\x7f", "\u200b\u200b\u200b", "\ue000\uf8ff", "a\x7f\x7f"):
        r.instructions.publish(String(data=garbage))
        time.sleep(0.2)
    wait_for(lambda: "2 of its 3 characters are control" in r.statuses[-1].message, what="a rejection of noise")
    stream_images(r.clock, r.images, 1.0)
    assert not r.actions and r.statuses[-1].state == PolicyStatus.IDLE and r.statuses[-1].episode_id == 0
    r.instructions.publish(String(data="y" * 1000))
    wait_for(lambda: r.statuses[-1].episode_id == 1, what="the 1000-character instruction accepted")


def bad_images() -> list[Image]:
    wrong_encoding = make_image(1.0)
    wrong_encoding.encoding = "yuv444"
    truncated = make_image(1.0)
    truncated.data = truncated.data[:-1]
    short_step = make_image(1.0)
    short_step.step -= 3
    long_step = make_image(1.0)
    long_step.step += 8
    huge = make_image(1.0)
    huge.height, huge.width, huge.step = 2**31 - 1, 2**31 - 1, 2**32 - 1
    return [wrong_encoding, truncated, short_step, long_step, huge, Image()]


def test_bad_images_are_dropped_and_the_node_survives(rig):
    r = rig()
    r.instructions.publish(String(data="stack the blocks"))
    wait_for(lambda: r.statuses[-1].episode_id == 1, what="the instruction")
    for image in bad_images():
        r.images.publish(image)
        r.clock.advance(0.1)
    wait_for(lambda: any("dropped camera image" in s.message for s in r.statuses), what="a dropped-image status")
    assert not r.actions, "a bad image must never reach the policy"
    stream_images(r.clock, r.images, 1.0)
    wait_for(lambda: r.actions, what="an action from a good image")
    assert r.node.alive()


def test_every_supported_encoding_and_padded_rows_give_actions(rig):
    r = rig()
    r.instructions.publish(String(data="look around"))
    for encoding in ("bgr8", "rgba8", "bgra8", "mono8", "yuv422", "yuv422_yuy2", "bayer_grbg8", "mono16", "rgb16"):
        count = len(r.actions)
        stream_images(r.clock, r.images, 0.5, make=lambda now, e=encoding: make_image(now, e))
        wait_for(lambda c=count: len(r.actions) > c, what=f"an action from a {encoding} image")

    def padded(now: float) -> Image:
        msg = make_image(now)
        msg.step += 4
        msg.data = bytes(msg.height * msg.step)
        return msg

    count = len(r.actions)
    stream_images(r.clock, r.images, 0.5, make=padded)
    wait_for(lambda: len(r.actions) > count, what="an action from a padded image")
    assert not any("dropped" in s.message for s in r.statuses)


def test_compressed_images_by_parameter(rig):
    r = rig(use_compressed_image=True)

    def jpeg(now: float) -> CompressedImage:
        buffer = io.BytesIO()
        PILImage.fromarray(np.full((12, 16, 3), 200, np.uint8)).save(buffer, format="JPEG")
        msg = CompressedImage(format="rgb8; jpeg compressed bgr8", data=buffer.getvalue())
        msg.header.stamp = seconds_to_stamp(now)
        return msg

    r.instructions.publish(String(data="pick up the can"))
    stream_images(r.clock, r.images, 1.0, make=jpeg)
    wait_for(lambda: r.actions, what="an action from a JPEG frame")
    corrupt = jpeg(r.clock.now)
    corrupt.data = corrupt.data[:20]
    r.images.publish(corrupt)
    r.clock.advance(0.5)
    wait_for(lambda: any("cannot decode" in s.message for s in r.statuses), what="a corrupt-JPEG status")
    # 4000x4000 in about 50 KB: refused from its header (#21 finding 4), never decoded or run.
    buffer = io.BytesIO()
    PILImage.new("RGB", (4000, 4000)).save(buffer, format="PNG")
    huge = CompressedImage(format="png", data=buffer.getvalue())
    huge.header.stamp = seconds_to_stamp(r.clock.now)
    r.images.publish(huge)
    r.clock.advance(0.5)
    wait_for(
        lambda: any("4000x4000 image exceeds the 2304000-pixel limit" in s.message for s in r.statuses),
        what="a size status",
    )
    assert all(a.header.stamp != huge.header.stamp for a in r.actions), "no action from the huge frame"
    assert r.node.alive()


def test_ticks_during_slow_inference_are_skipped_not_queued(rig):
    r = rig(policy={"latency_ms": 450.0}, control_rate_hz=10.0)
    r.instructions.publish(String(data="sort the fruit"))
    stream_images(r.clock, r.images, 3.0)
    wait_for(lambda: r.statuses[-1].skipped_ticks > 0, what="skipped ticks")
    r.clock.advance(0.6)
    # Ticks at 10 Hz with 450 ms inference: about one in five runs, the rest are skipped.
    status = r.statuses[-1]
    assert status.skipped_ticks >= 2 * status.step
    assert len(r.actions) == status.step
    assert status.last_inference_ms >= 450.0


@st.composite
def fuzzed_images(draw) -> Image:
    encoding = draw(st.sampled_from(["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "16UC1", "", "rgb16"]) | st.text())
    msg = Image(
        height=draw(st.integers(0, 64) | st.integers(0, 2**32 - 1)),
        width=draw(st.integers(0, 64) | st.integers(0, 2**32 - 1)),
        encoding=encoding,
        is_bigendian=draw(st.integers(0, 255)),
        step=draw(st.integers(0, 256) | st.integers(0, 2**32 - 1)),
    )
    msg.data = draw(st.binary(max_size=4096))
    return msg


def test_fuzzed_images_never_crash_the_node(rig):
    r = rig()
    r.instructions.publish(String(data="anything"))
    wait_for(lambda: r.statuses[-1].episode_id == 1, what="the instruction")

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(fuzzed_images())
    def publish(msg: Image) -> None:
        r.images.publish(msg)
        r.clock.advance(0.01)

    publish()
    assert r.node.alive(), r.node.output()
    count = len(r.actions)
    stream_images(r.clock, r.images, 1.0)
    wait_for(lambda: len(r.actions) > count, what="an action after the fuzzing")
    assert "Traceback" not in r.node.output()


def test_parameters_carry_descriptors_ranges_and_read_only(probe, rig):
    r = rig()
    describe = probe.node.create_client(DescribeParameters, "rt_policy/describe_parameters")
    update = probe.node.create_client(SetParameters, "rt_policy/set_parameters")
    assert describe.wait_for_service(timeout_sec=20) and update.wait_for_service(timeout_sec=20)

    def call(client, request):
        future = client.call_async(request)
        return wait_for(lambda: future.done() and future.result(), what=f"{client.srv_name}")

    names = ["control_rate_hz", "max_image_age_s", "policy_path"]
    rate, age, path = call(describe, DescribeParameters.Request(names=names)).descriptors
    assert rate.read_only and rate.floating_point_range[0].from_value == 0.1 and rate.description
    assert not age.read_only and age.floating_point_range[0].to_value == 60.0
    assert path.read_only and path.description

    def set_value(name: str, value: float) -> bool:
        parameter = Parameter(name, value=value).to_parameter_msg()
        return call(update, SetParameters.Request(parameters=[parameter])).results[0].successful

    assert set_value("max_image_age_s", 2.0)
    assert not set_value("max_image_age_s", 100.0), "out of range"
    assert not set_value("control_rate_hz", 5.0), "read-only"
    assert r.node.alive()


def test_a_failed_start_prints_one_line_naming_the_file(launch, policy_dir):
    """#21 finding 6: no second traceback from destroying a half-built node, and the malformed file is named."""
    path = policy_dir()
    config = f"{path}/config.json"
    with open(config, "w") as file:
        file.write('{"policy": "constant",\n  "mode": }')
    node = launch("rt_policy", "rt_policy", config="policy.yaml", params={"policy_path": path})
    code = node.process.wait(timeout=60)
    lines = node.output().strip().splitlines()
    assert code == 1 and len(lines) == 1, node.output()
    assert f"cannot start: {config}: not valid JSON (Expecting value: line 2 column 11" in lines[0]

"""rt_episode_recorder and bag_io: counts match the publishers, bags read back whole, kills leave readable bags."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from harness import wait_for
from rclpy.qos import DurabilityPolicy, QoSProfile
from rclpy.serialization import serialize_message
from rosbags.highlevel import AnyReader
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from std_srvs.srv import Trigger

from rt_msgs.msg import RTAction
from rt_policy_node.data.bag_io import (
    EpisodeInfo,
    EpisodeWriter,
    list_episodes,
    make_typestore,
    next_episode_index,
    read_episode,
    update_episode_extra,
)
from rt_policy_node.policies.policy import Action, Mode
from rt_policy_node.ros.conversions import action_to_msg
from rt_policy_node.ros.qos import LATCHED, RELIABLE

EPISODE_NAME = re.compile(r"^episode_\d{8}-\d{6}_(\d{4})$")
SAVED_QOS = QoSProfile(depth=10, durability=DurabilityPolicy.TRANSIENT_LOCAL)
SAY_LATE = Path(__file__).with_name("say_late.py")


def read_bag(path) -> dict[str, list]:
    """topic -> deserialized messages, using only the definitions stored in the bag."""
    messages: dict[str, list] = {}
    with AnyReader([path]) as reader:
        for connection, _, raw in reader.messages():
            messages.setdefault(connection.topic, []).append(reader.deserialize(raw, connection.msgtype))
    return messages


def image(stamp_ns: int, width: int = 640, height: int = 480) -> Image:
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.data = np.full(height * width * 3, stamp_ns % 251, np.uint8).tobytes()
    return msg


# -- bag_io (ROS-free) ------------------------------------------------------------------------------------


def test_bag_io_round_trip_needs_no_type_registration(tmp_path):
    share = __import__("ament_index_python").get_package_share_directory("rt_msgs")
    typestore = make_typestore({"rt_msgs": share})
    assert next_episode_index(tmp_path) == 0
    directory = tmp_path / "episode_20250101-120000_0007"
    info = EpisodeInfo(episode_id=directory.name, index=7, instruction="pick up the red cube", clock="wall", start=1.5)
    writer = EpisodeWriter(directory, typestore, info)
    action = action_to_msg(Action(world_vector=np.array([0.1, 0.2, 0.3]), mode=Mode.ARM, tokens=np.arange(11)))
    writer.write(
        "/rt/instruction", "std_msgs/msg/String", 1_000, serialize_message(String(data="pick up the red cube"))
    )
    writer.write("/rt/action", "rt_msgs/msg/RTAction", 2_000, serialize_message(action))
    writer.write("/rt/action", "rt_msgs/msg/RTAction", 3_000, serialize_message(action))
    closed = writer.close("terminated", 2.5)
    assert closed.message_counts == {"/rt/instruction": 1, "/rt/action": 2}
    assert {p.name for p in directory.iterdir()} == {"metadata.yaml", f"{directory.name}.mcap", "episode.json"}
    bag = read_bag(directory)
    assert bag["/rt/instruction"][0].data == "pick up the red cube"
    got = bag["/rt/action"][1]
    np.testing.assert_allclose(got.world_vector, [0.1, 0.2, 0.3], rtol=1e-6)
    assert got.mode == RTAction.ARM and list(got.tokens) == list(range(11))
    assert list_episodes(tmp_path) == [directory] and next_episode_index(tmp_path) == 8
    update_episode_extra(directory, expert_success=True)
    stored = read_episode(directory)
    assert (stored.outcome, stored.start, stored.end, stored.extra) == (
        "terminated",
        1.5,
        2.5,
        {"expert_success": True},
    )
    with pytest.raises(ValueError, match="outcome"):
        EpisodeWriter(tmp_path / "other", typestore, EpisodeInfo("other", 0, "x", "wall", 0.0)).close("crashed", 1.0)


# -- the node -------------------------------------------------------------------------------------------


@pytest.fixture
def recorder(probe, launch, tmp_path):
    """Starts the recorder; returns (process, output dir, saved-episode list, publishers by topic)."""

    def start(**params):
        out = tmp_path / "episodes"
        node = launch(
            "rt_episode_recorder",
            "rt_episode_recorder",
            config="recorder.yaml",
            params={"output_dir": str(out), **params},
        )
        saved = probe.collect(String, "rt_episode_recorder/episode_saved", SAVED_QOS)
        return node, out, saved, episode_publishers(probe)

    return start


def episode_publishers(probe) -> dict:
    """Publishers of what an episode holds (instruction, actions, camera, joint states), matched by the recorder."""
    pubs = {
        "instruction": probe.publisher(String, "rt/instruction", LATCHED),
        "action": probe.publisher(RTAction, "rt/action", RELIABLE),
        "image": probe.publisher(Image, "camera/image_raw", QoSProfile(depth=100)),
        "joints": probe.publisher(JointState, "joint_states", QoSProfile(depth=100)),
    }
    for publisher in pubs.values():
        probe.wait_for_subscribers(publisher)
    return pubs


def publish_episode(pubs, seconds: float, rate_hz: float = 30.0, terminate: bool = True) -> dict[str, int]:
    """Instruction, then images and joint states at `rate_hz` and an action every 10th frame; returns counts."""
    pubs["instruction"].publish(String(data="stack the blocks"))
    counts = {"/rt/instruction": 1, "/camera/image_raw": 0, "/joint_states": 0, "/rt/action": 0}
    time.sleep(0.3)
    start = time.monotonic()
    for i in range(round(seconds * rate_hz)):
        stamp = time.time_ns()
        pubs["image"].publish(image(stamp))
        pubs["joints"].publish(JointState(name=["arm_joint_1"], position=[i * 0.01]))
        counts["/camera/image_raw"] += 1
        counts["/joint_states"] += 1
        if i % 10 == 0:
            pubs["action"].publish(action_to_msg(Action(mode=Mode.ARM), instruction="stack the blocks"))
            counts["/rt/action"] += 1
        time.sleep(max(0.0, start + (i + 1) / rate_hz - time.monotonic()))
    if terminate:
        pubs["action"].publish(action_to_msg(Action(mode=Mode.TERMINATE)))
        counts["/rt/action"] += 1
    return counts


def test_every_message_is_recorded_under_a_30hz_640x480_image_load(recorder):
    node, out, saved, pubs = recorder()
    sent = publish_episode(pubs, seconds=4.0)
    wait_for(lambda: saved, timeout=30, what="the episode to be saved")
    (episode,) = list_episodes(out)
    assert saved[0].data == str(episode.resolve())
    assert EPISODE_NAME.match(episode.name)
    info = json.loads((episode / "episode.json").read_text())
    assert info["outcome"] == "terminated" and info["instruction"] == "stack the blocks"
    assert info["clock"] == "wall" and info["end"] > info["start"] and info["extra"] == {}
    assert info["message_counts"] == sent
    bag = read_bag(episode)
    assert {topic: len(msgs) for topic, msgs in bag.items()} == sent
    frames = bag["/camera/image_raw"]
    assert (frames[0].height, frames[0].width, frames[0].encoding) == (480, 640, "rgb8")
    stamp = frames[-1].header.stamp.sec * 1_000_000_000 + frames[-1].header.stamp.nanosec
    assert np.all(frames[-1].data == stamp % 251)
    assert bag["/rt/action"][-1].mode == RTAction.TERMINATE
    assert node.alive()


def test_actions_that_overtake_their_instruction_open_the_episode_with_it(probe, recorder):
    """An instruction from a new process arrives after the actions published after it (discovery first)."""
    _, out, saved, pubs = recorder()
    pubs["action"].publish(action_to_msg(Action(mode=Mode.BASE)))  # before the instruction: not recorded
    time.sleep(0.3)
    speaker = subprocess.Popen([sys.executable, str(SAY_LATE), "overtaken"], stdout=subprocess.PIPE, text=True)
    try:
        assert speaker.stdout.readline().strip() == "sent"
        for mode in (Mode.ARM, Mode.ARM, Mode.TERMINATE):
            pubs["action"].publish(action_to_msg(Action(mode=mode), instruction="overtaken"))
        wait_for(lambda: saved, timeout=30, what="the episode to be saved")
    finally:
        speaker.wait(timeout=30)
    (episode,) = list_episodes(out)
    info = read_episode(episode)
    assert info.instruction == "overtaken" and info.outcome == "terminated"
    assert [a.mode for a in read_bag(episode)["/rt/action"]] == [RTAction.ARM, RTAction.ARM, RTAction.TERMINATE]


def test_the_newest_frame_before_the_instruction_opens_the_episode(recorder):
    """A policy acts on the camera frame it has when the instruction comes: that frame is in the bag (the state
    the first action saw), the older ones and the actions before the instruction are not."""
    _, out, saved, pubs = recorder()
    for stamp in (1_000_000_001, 2_000_000_002):
        pubs["image"].publish(image(stamp, width=8, height=6))
    pubs["action"].publish(action_to_msg(Action(mode=Mode.BASE)))
    time.sleep(0.5)
    pubs["instruction"].publish(String(data="look first"))
    time.sleep(0.3)
    pubs["image"].publish(image(3_000_000_003, width=8, height=6))
    for mode in (Mode.ARM, Mode.TERMINATE):
        pubs["action"].publish(action_to_msg(Action(mode=mode), instruction="look first"))
    wait_for(lambda: saved, timeout=30, what="the episode to be saved")
    (episode,) = list_episodes(out)
    bag = read_bag(episode)
    assert [f.header.stamp.sec for f in bag["/camera/image_raw"]] == [2, 3]
    assert [a.mode for a in bag["/rt/action"]] == [RTAction.ARM, RTAction.TERMINATE]
    assert read_episode(episode).message_counts["/camera/image_raw"] == 2


def test_a_flood_of_state_messages_keeps_the_actions_held_for_a_late_instruction(probe, recorder):
    """More joint states than `queue_depth` between the first actions and their late instruction: each topic is
    held on its own, so the actions still open the episode."""
    _, out, saved, pubs = recorder(queue_depth=50)
    speaker = subprocess.Popen([sys.executable, str(SAY_LATE), "flooded"], stdout=subprocess.PIPE, text=True)
    try:
        assert speaker.stdout.readline().strip() == "sent"
        for _ in range(2):
            pubs["action"].publish(action_to_msg(Action(mode=Mode.ARM), instruction="flooded"))
        for i in range(150):
            pubs["joints"].publish(JointState(name=["arm_joint_1"], position=[i * 0.01]))
        pubs["action"].publish(action_to_msg(Action(mode=Mode.TERMINATE), instruction="flooded"))
        wait_for(lambda: saved, timeout=30, what="the episode to be saved")
    finally:
        speaker.wait(timeout=30)
    (episode,) = list_episodes(out)
    assert read_episode(episode).instruction == "flooded"
    assert [a.mode for a in read_bag(episode)["/rt/action"]] == [RTAction.ARM, RTAction.ARM, RTAction.TERMINATE]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_mid_episode_closes_the_bag_properly(recorder, sig):
    node, out, _, pubs = recorder()
    sent = publish_episode(pubs, seconds=1.0, rate_hz=10.0, terminate=False)
    time.sleep(1.0)
    assert node.stop(sig) == 0, node.output()
    (episode,) = list_episodes(out)
    info = json.loads((episode / "episode.json").read_text())
    assert info["outcome"] == "shutdown"
    assert info["message_counts"] == sent
    assert {topic: len(msgs) for topic, msgs in read_bag(episode).items()} == sent


def test_episode_ends_new_instruction_stop_service_and_timeout(probe, recorder):
    _, out, saved, pubs = recorder(episode_timeout_s=1.5)
    pubs["instruction"].publish(String(data="first"))
    time.sleep(0.3)
    pubs["action"].publish(action_to_msg(Action(mode=Mode.ARM)))
    pubs["instruction"].publish(String(data="   "))
    time.sleep(0.3)
    pubs["instruction"].publish(String(data="\u200b\ufffd\ufffd\x7f"))  # no letter or digit: no new episode
    time.sleep(0.3)
    pubs["instruction"].publish(String(data="second"))
    time.sleep(0.3)
    client = probe.node.create_client(Trigger, "rt_episode_recorder/stop_episode")
    assert client.wait_for_service(timeout_sec=20)
    future = client.call_async(Trigger.Request())
    response = wait_for(lambda: future.done() and future.result(), what="stop_episode")
    assert response.success
    wait_for(lambda: len(saved) == 2, what="two saved episodes")
    future = client.call_async(Trigger.Request())
    assert not wait_for(lambda: future.done() and future.result(), what="stop_episode").success
    pubs["instruction"].publish(String(data="third"))
    wait_for(lambda: len(saved) == 3, timeout=30, what="the third episode to time out")
    episodes = [read_episode(p) for p in list_episodes(out)]
    assert [(e.instruction, e.outcome, e.index) for e in episodes] == [
        ("first", "new_instruction", 0),
        ("second", "stopped", 1),
        ("third", "timeout", 2),
    ]
    assert episodes[0].message_counts == {"/rt/instruction": 1, "/rt/action": 1}
    assert response.message == str(list_episodes(out)[1].resolve())
    assert episodes[2].end - episodes[2].start >= 1.5

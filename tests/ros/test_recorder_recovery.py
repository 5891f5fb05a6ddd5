"""A SIGKILLed rt_episode_recorder leaves a bag that rt-bag-recover, or the recorder's next start, makes whole."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time

import numpy as np
from harness import wait_for
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from test_recorder import SAVED_QOS, episode_publishers, image, read_bag

from rt_msgs.msg import RTAction
from rt_policy_node.data.bag_io import list_episodes, read_episode
from rt_policy_node.data.mcap_salvage import MAGIC
from rt_policy_node.policies.policy import Action, Mode
from rt_policy_node.ros.conversions import action_to_msg
from rt_policy_node.ros.qos import LATCHED, RELIABLE

RATE_HZ = 30.0
CAMERA_TICKS, BLIND_TICKS = 60, 30  # 2 s with 640x480 frames, then 1 s of joint states and actions only
# What a kill may cost: the flush period (0.1 s, 3 joint states), what is still in flight, and a flush timer
# late by a few ticks on a busy 2-core machine (CI once lost 7). Without the flush, the last second's small
# messages (30 joint states, 3 actions) would all sit in an unwritten chunk.
MAX_LOST_JOINT_STATES = 10
MAX_LOST_ACTIONS = 1


def start_recorder(launch, out):
    return launch("rt_episode_recorder", "rt_episode_recorder", config="recorder.yaml", params={"output_dir": str(out)})


def publish_until_killed(probe, node) -> dict[str, list]:
    """Joint states at 30 Hz and an action every 10th tick, 640x480 frames with them until the camera stops;
    SIGKILL mid-stream.

    Returns what was published before the kill, per topic, as the values the bag must hold: frame stamps (ns),
    joint positions and action x values.
    """
    pubs = episode_publishers(probe)
    pubs["instruction"].publish(String(data="stack the blocks"))
    sent: dict[str, list] = {"/camera/image_raw": [], "/joint_states": [], "/rt/action": []}
    time.sleep(0.3)
    start = time.monotonic()
    for i in range(CAMERA_TICKS + BLIND_TICKS):
        if i < CAMERA_TICKS:
            stamp = time.time_ns()
            pubs["image"].publish(image(stamp))
            sent["/camera/image_raw"].append(stamp)
        pubs["joints"].publish(JointState(name=["arm_joint_1"], position=[i * 0.01]))
        sent["/joint_states"].append(i * 0.01)
        if i % 10 == 0:
            x = float(np.float32(i / 1000))  # as the float32 field stores it
            pubs["action"].publish(action_to_msg(Action(world_vector=np.array([x, 0.0, 0.0]), mode=Mode.ARM)))
            sent["/rt/action"].append(x)
        time.sleep(max(0.0, start + (i + 1) / RATE_HZ - time.monotonic()))
    node.process.send_signal(signal.SIGKILL)
    for i in range(5):  # the robot goes on after the kill
        pubs["joints"].publish(JointState(name=["arm_joint_1"], position=[-1.0 - i]))
    node.process.wait(10)
    for publisher in pubs.values():
        probe.node.destroy_publisher(publisher)
    return sent


def recorded(bag: dict[str, list]) -> dict[str, list]:
    """The bag's messages as the values `publish_until_killed` returns."""

    def stamp(msg) -> int:
        return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

    frames = bag.get("/camera/image_raw", [])
    assert all(np.all(f.data == stamp(f) % 251) for f in frames), "a frame's pixels do not match its stamp"
    return {
        "/camera/image_raw": [stamp(f) for f in frames],
        "/joint_states": [float(m.position[0]) for m in bag.get("/joint_states", [])],
        "/rt/action": [float(m.world_vector[0]) for m in bag.get("/rt/action", [])],
    }


def files(directory) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()}


def test_a_sigkilled_recorder_leaves_a_bag_that_recovers_up_to_the_kill(launch, probe, tmp_path, capsys):
    out = tmp_path / "episodes"
    node = start_recorder(launch, out)
    sent = publish_until_killed(probe, node)
    (episode,) = list_episodes(out)
    assert not (episode / "metadata.yaml").exists() and not (episode / "episode.json").exists()
    killed = (episode / f"{episode.name}.mcap").read_bytes()
    assert killed.startswith(MAGIC) and not killed.endswith(MAGIC), "the killed recorder's file has a footer"
    restart_out = tmp_path / "restart"
    shutil.copytree(out, restart_out)

    cli = subprocess.run(["rt-bag-recover", str(out)], capture_output=True, text=True, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.startswith(f"{episode.name}: recovered ")
    bag = read_bag(episode)
    got = recorded(bag)
    lost = {topic: len(values) - len(got[topic]) for topic, values in sent.items()}
    with capsys.disabled():
        print(f"\nSIGKILL after {(CAMERA_TICKS + BLIND_TICKS) / RATE_HZ:.0f} s: lost {lost}; {cli.stdout.strip()}")
    for topic, values in sent.items():
        assert got[topic] == values[: len(got[topic])], f"{topic} is not the published sequence up to the kill"
    assert lost["/camera/image_raw"] == 0
    assert lost["/joint_states"] <= MAX_LOST_JOINT_STATES
    assert lost["/rt/action"] <= MAX_LOST_ACTIONS
    assert [m.data for m in bag["/rt/instruction"]] == ["stack the blocks"]

    info = read_episode(episode)
    assert (info.outcome, info.instruction, info.clock, info.index) == ("recovered", "stack the blocks", "wall", 0)
    assert info.message_counts == {topic: len(msgs) for topic, msgs in bag.items()}
    assert info.start <= info.end
    assert info.extra["recovery"]["original"] == f"{episode.name}.mcap.truncated"
    assert (episode / f"{episode.name}.mcap.truncated").read_bytes() == killed
    assert sorted(files(episode)) == sorted(
        ["metadata.yaml", "episode.json", f"{episode.name}.mcap", f"{episode.name}.mcap.truncated"]
    )

    before = files(episode)
    again = subprocess.run(["rt-bag-recover", str(out), str(episode)], capture_output=True, text=True, timeout=60)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [f"{out}: no unfinished episode", f"{episode.name}: intact, left untouched"]
    assert files(episode) == before

    restarted = start_recorder(launch, restart_out)
    saved = probe.collect(String, "rt_episode_recorder/episode_saved", SAVED_QOS)
    copy = restart_out / episode.name
    wait_for(lambda: (copy / "metadata.yaml").exists(), timeout=30, what="the restarted recorder to recover")
    wait_for(lambda: "recovered" in restarted.output(), what="the recovery in the recorder's log")
    assert recorded(read_bag(copy)) == got
    assert json.loads((copy / "episode.json").read_text())["message_counts"] == info.message_counts

    instruction = probe.publisher(String, "rt/instruction", LATCHED)
    action = probe.publisher(RTAction, "rt/action", RELIABLE)
    probe.wait_for_subscribers(instruction)
    probe.wait_for_subscribers(action)
    instruction.publish(String(data="next"))
    wait_for(lambda: len(list_episodes(restart_out)) == 2, what="the next episode to start")
    action.publish(action_to_msg(Action(mode=Mode.TERMINATE)))
    wait_for(lambda: saved, what="the next episode to be saved")
    assert [read_episode(p).outcome for p in list_episodes(restart_out)] == ["recovered", "terminated"]
    assert restarted.stop() == 0, restarted.output()

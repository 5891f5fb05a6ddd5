"""rt-collect end to end: real processes leave one readable MCAP bag + marked sidecar per episode."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from rosbags.highlevel import AnyReader

from rt_policy_node.data.bag_io import list_episodes, read_episode
from rt_sim.scene import COLOURS

SHIPPED = Path(__file__).resolve().parents[2] / "models" / "rt1_sim"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("rt-collect") is None, reason="rt_sim is not built"),
]


def test_short_collection_leaves_readable_marked_bags(tmp_path):
    """With --action-noise (DART), the robot follows noisy copies while the bag keeps the expert's labels; with
    --every-colour each seed's layout is demonstrated once per colour."""
    out = tmp_path / "episodes"
    command = ["rt-collect", "--task", "drive_to_marker", "--episodes", "1", "--out", str(out), "--seed", "4",
               "--image-width", "64", "--image-height", "48", "--action-noise", "0.3", "--every-colour"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4/4 expert successes" in result.stdout

    episodes = list_episodes(out)
    assert len(episodes) == 4
    instructions = []
    for colour, directory in zip(COLOURS, episodes, strict=True):
        info = read_episode(directory)
        assert info.outcome == "terminated" and info.clock == "sim"
        assert info.extra["expert_success"] is True and info.extra["task"] == "drive_to_marker"
        assert info.extra["seed"] == 4 and info.extra["params"]["colour"] == colour and colour in info.instruction
        assert info.extra["action_noise"] == 0.3
        with AnyReader([directory]) as reader:
            counts: dict[str, int] = {}
            labels = []
            for connection, _, raw in reader.messages():
                message = reader.deserialize(raw, connection.msgtype)
                counts[connection.topic] = counts.get(connection.topic, 0) + 1
                if connection.topic == "/rt/action":
                    labels.append(np.abs(message.base_displacement).max())
            image = next(reader.messages(connections=[c for c in reader.connections if c.topic == "/camera/image_raw"]))
            frame = reader.deserialize(image[2], "sensor_msgs/msg/Image")
        instructions.append(info.instruction.replace(colour, "{colour}"))
        assert counts == info.message_counts
        assert counts["/rt/action"] == info.extra["steps"] > 1
        # The expert drives at full speed (a peak of exactly 1) until it is near the goal; noise would not.
        assert labels[:3] == [1.0, 1.0, 1.0]
        assert (frame.width, frame.height, frame.encoding) == (64, 48, "rgb8")
        assert {"/camera/image_raw", "/joint_states", "/odom", "/cmd_vel", "/sim/success"} <= set(counts)

    assert len(set(instructions)) == 1, "one seed: the same template, four colours"

    summary = json.loads((out / "collection.json").read_text())
    assert summary["episodes"] == 4 and summary["success_rate"] == 1.0 and summary["episodes_per_minute"] > 0

    video = tmp_path / "episode.gif"
    subprocess.run(["rt-bag-video", str(episodes[0]), str(video), "--every", "3"], check=True, timeout=60)
    frames = iio.imread(video, index=None)
    assert frames.shape[0] > 1 and frames.shape[1:3] == (48, 64)


def test_dagger_collection_labels_the_states_a_policy_reaches(tmp_path):
    """With --policy the robot follows the shipped model; the bag pairs each of its actions with the expert's."""
    out = tmp_path / "dagger"
    command = ["rt-collect", "--task", "drive_to_marker", "--episodes", "1", "--out", str(out), "--seed", "9",
               "--image-width", "64", "--image-height", "48", "--max-steps", "6",
               "--policy", str(SHIPPED)]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=280)
    assert result.returncode == 0, result.stdout + result.stderr

    (directory,) = list_episodes(out)
    info = read_episode(directory)
    assert info.extra["driven_by"] == str(SHIPPED) and isinstance(info.extra["policy_success"], bool)
    assert json.loads((out / "collection.json").read_text())["successes_of"] == "policy_success"
    stamps: dict[str, list[int]] = {"/rt/action": [], "/rt/action_executed": []}
    with AnyReader([directory]) as reader:
        for connection, _, raw in reader.messages():
            if connection.topic in stamps:
                header = reader.deserialize(raw, connection.msgtype).header
                stamps[connection.topic].append(header.stamp.sec * 10**9 + header.stamp.nanosec)
    labels, executed = stamps["/rt/action"], stamps["/rt/action_executed"]
    assert len(labels) == info.extra["steps"] >= 5
    # Labelling starts with the policy's first action (not while its first inference is still running).
    assert executed and min(executed) <= min(labels)

"""The recorder's episode segmentation without ROS: real bags written, clocks given by the test."""

from pathlib import Path

import pytest
from rosbags.highlevel import AnyReader

from rt_policy_node.data.bag_io import make_typestore, read_episode
from rt_policy_node.data.episode_segmenter import EpisodeSegmenter

STRING = "std_msgs/msg/String"
S = 1_000_000_000


class Stream:
    """A segmenter whose actions are strings ("stop" is TERMINATE) and whose steady clock the test moves."""

    def __init__(self, out: Path, hold_s: float = 5.0) -> None:
        self.typestore = make_typestore()
        self.steady = 0
        self.closed: list[tuple[Path, str]] = []
        self.segmenter = EpisodeSegmenter(
            out,
            self.typestore,
            "sim",
            recorded={"/rt/instruction", "/rt/action", "/camera", "/joints"},
            state_topics={"/camera", "/joints", "/not_recorded"},
            instruction_topic="/rt/instruction",
            action_topic="/rt/action",
            depth=3,
            is_terminate=lambda data: self.text(data) == "stop",
            on_closed=lambda directory, info: self.closed.append((directory, info.outcome)),
            hold_s=hold_s,
            steady_ns=lambda: self.steady,
        )

    def data(self, text: str) -> bytes:
        msg = self.typestore.types[STRING](data=text)
        return bytes(self.typestore.serialize_cdr(msg, STRING))

    def text(self, data: bytes) -> str:
        return self.typestore.deserialize_cdr(data, STRING).data

    def hear(self, topic: str, text: str, published_s: float, received_s: float) -> None:
        self.steady += 1_000_000
        self.segmenter.message(topic, STRING, self.data(text), int(published_s * S), int(received_s * S))

    def instruct(self, text: str, published_s: float, received_s: float) -> Path:
        episode = self.segmenter.instruction(text, self.data(text), int(published_s * S), int(received_s * S))
        return episode.directory

    def messages(self, directory: Path) -> list[tuple[str, str]]:
        with AnyReader([directory], default_typestore=self.typestore) as reader:
            return [
                (c.topic, self.text(data)) for c, _, data in sorted(reader.messages(), key=lambda m: (m[1], m[0].topic))
            ]


def test_messages_that_overtook_their_instruction_and_the_last_frame_before_it_open_the_episode(tmp_path):
    stream = Stream(tmp_path)
    stream.hear("/camera", "old frame", 8.0, 8.0)
    stream.hear("/camera", "frame", 9.5, 9.5)
    stream.hear("/joints", "joints", 9.6, 9.6)
    stream.hear("/rt/action", "stale action", 9.0, 9.0)  # published before the instruction: not this episode's
    stream.hear("/rt/action", "first action", 10.1, 10.1)  # published after it, heard before it
    stream.hear("/unrecorded", "x", 10.1, 10.1)
    directory = stream.instruct("pick up the red cube", 10.0, 10.2)
    stream.hear("/rt/action", "second action", 10.5, 10.5)
    stream.hear("/rt/action", "stop", 11.0, 11.0)
    assert stream.closed == [(directory, "terminated")]
    # The instruction is logged at the episode's start: the earliest message that opened it.
    assert stream.messages(directory) == [
        ("/camera", "frame"),
        ("/rt/instruction", "pick up the red cube"),
        ("/joints", "joints"),
        ("/rt/action", "first action"),
        ("/rt/action", "second action"),
        ("/rt/action", "stop"),
    ]
    info = read_episode(directory)
    assert info.start == pytest.approx(9.5) and info.end == pytest.approx(11.0) and info.outcome == "terminated"
    assert info.message_counts == {"/camera": 1, "/joints": 1, "/rt/action": 3, "/rt/instruction": 1}


def test_held_messages_expire_and_each_topic_keeps_its_own_queue(tmp_path):
    stream = Stream(tmp_path, hold_s=5.0)
    stream.hear("/rt/action", "expired action", 20.0, 20.0)
    stream.steady = 6 * S
    stream.hear("/rt/action", "held action", 20.5, 20.5)
    for i in range(10):  # a flood deeper than the queue on another topic
        stream.hear("/joints", f"joints {i}", 19.0 + i * 0.01, 19.0)
    directory = stream.instruct("go", 20.0, 21.0)
    stream.segmenter.close("stopped", 22 * S)
    assert stream.messages(directory) == [
        ("/joints", "joints 9"),
        ("/rt/instruction", "go"),
        ("/rt/action", "held action"),
    ]


def test_an_episode_ends_at_the_next_instruction_a_stop_or_a_timeout(tmp_path):
    stream = Stream(tmp_path)
    first = stream.instruct("one", 1.0, 1.0)
    second = stream.instruct("two", 2.0, 2.0)
    assert not stream.segmenter.timed_out(100 * S, 0.0) and not stream.segmenter.timed_out(50 * S, 60.0)
    assert stream.segmenter.timed_out(70 * S, 60.0)
    third = stream.instruct("three", 80.0, 80.0)
    assert stream.segmenter.close("stopped", 81 * S) == third
    assert stream.segmenter.close("stopped", 82 * S) is None
    assert stream.closed == [(first, "new_instruction"), (second, "timeout"), (third, "stopped")]
    assert [read_episode(d).index for d in (first, second, third)] == [0, 1, 2]
    stream.hear("/rt/action", "between episodes", 90.0, 90.0)
    assert stream.closed[-1] == (third, "stopped")

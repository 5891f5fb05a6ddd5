"""Which recorded message goes into which episode: the recorder's segmentation, without ROS.

An episode runs from an instruction to a TERMINATE action, the next instruction, a timeout, a stop request or
shutdown. Topics are not ordered with each other: an instruction can arrive after the first action it caused (a
late-discovered publisher, a resent packet). So messages heard between episodes are held back for `hold_s`,
each topic in its own queue (a flood of joint states must not push out the actions), and those published at or
after the instruction (by their DDS source timestamps) open the episode with it. The state topics' newest message
from before the instruction opens it too: the camera frame its first action may have been computed from.

Messages arrive serialized and are written as they came (`bag_io.EpisodeWriter`); the caller says which action
messages are TERMINATE (`is_terminate`) and is told of every closed episode (`on_closed`). Clocks are explicit:
`received_ns` is the bag's log time (the node's clock), `steady_ns` a monotonic clock for how long a message
has been held.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from rosbags.typesys.store import Typestore

from rt_policy_node.data.bag_io import EpisodeInfo, EpisodeWriter, episode_dir_name, next_episode_index

# How long a message heard between episodes may wait for a late instruction that it followed: longer than a
# reliable resend after a lost packet (Fast DDS heartbeats every 3 s).
HOLD_S = 5.0
INSTRUCTION_TYPE = "std_msgs/msg/String"


class Heard(NamedTuple):
    """A message heard while no episode was open."""

    published_ns: int  # DDS source timestamp (0 where the middleware gives none)
    steady_ns: int
    topic: str
    msgtype: str
    received_ns: int  # the bag's log time
    data: bytes


def newest_before(candidates: Iterable[Heard | None], published_ns: int, since_steady_ns: float) -> Heard | None:
    """The newest message heard since `since_steady_ns` and published before `published_ns` (0: before now)."""
    before = [
        m
        for m in candidates
        if m is not None and m.steady_ns >= since_steady_ns and not (published_ns and m.published_ns >= published_ns)
    ]
    return max(before, key=lambda m: m.steady_ns, default=None)


class EpisodeSegmenter:
    """Cuts the stream of recorded messages into episode bags under `output_dir`."""

    def __init__(
        self,
        output_dir: Path,
        typestore: Typestore,
        clock_kind: str,
        recorded: set[str],
        state_topics: set[str],
        instruction_topic: str,
        action_topic: str,
        depth: int,
        is_terminate: Callable[[bytes], bool],
        on_closed: Callable[[Path, EpisodeInfo], None],
        hold_s: float = HOLD_S,
        steady_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.output_dir, self.typestore, self.clock_kind = output_dir, typestore, clock_kind
        self.recorded = recorded
        self.state_topics = state_topics & recorded
        self.instruction_topic, self.action_topic = instruction_topic, action_topic
        self.depth, self.hold_s = depth, hold_s
        self.is_terminate, self.on_closed, self.steady_ns = is_terminate, on_closed, steady_ns
        self.episode: EpisodeWriter | None = None
        self.next_index = next_episode_index(output_dir)
        self.between: dict[str, deque[Heard]] = {}  # per topic, the last messages between episodes
        self.latest_state: dict[str, Heard] = {}  # per state topic, its newest message, in an episode or not

    def instruction(self, instruction: str, data: bytes, published_ns: int, received_ns: int) -> EpisodeWriter:
        """A valid instruction: closes the open episode and opens the next with each state topic's newest message
        from before it, then the held messages published at or after it. Returns the new episode's writer."""
        self.close("new_instruction", received_ns)
        since = self.steady_ns() - self.hold_s * 1e9
        held = sorted((m for queue in self.between.values() for m in queue), key=lambda m: m.steady_ns)
        early = [m for m in held if m.steady_ns >= since and published_ns and m.published_ns >= published_ns]
        state = []
        for topic in sorted(self.state_topics):
            candidates = [*self.between.get(topic, ()), self.latest_state.get(topic)]
            if (m := newest_before(candidates, published_ns, since)) is not None:
                state.append(m)
        self.between.clear()
        start = min([received_ns, *(m.received_ns for m in (*state, *early))])
        episode = self._open(instruction, start)
        self._record(self.instruction_topic, INSTRUCTION_TYPE, start, data)
        for m in (*state, *early):
            self._record(m.topic, m.msgtype, m.received_ns, m.data)
        return episode

    def message(self, topic: str, msgtype: str, data: bytes, published_ns: int, received_ns: int) -> None:
        """Any other message: into the open episode (a TERMINATE action closes it), else held for a late
        instruction."""
        heard = Heard(published_ns, self.steady_ns(), topic, msgtype, received_ns, data)
        if topic in self.state_topics:
            self.latest_state[topic] = heard
        if self.episode is not None:
            self._record(topic, msgtype, received_ns, data)
        elif topic in self.recorded:
            self.between.setdefault(topic, deque(maxlen=self.depth)).append(heard)

    def close(self, outcome: str, now_ns: int) -> Path | None:
        """Closes the open episode, if any, with `outcome`; returns its directory."""
        if self.episode is None:
            return None
        episode, self.episode = self.episode, None
        self.on_closed(episode.directory, episode.close(outcome, now_ns * 1e-9))
        return episode.directory

    def timed_out(self, now_ns: int, limit_s: float) -> bool:
        """Closes the open episode with "timeout" once it has run longer than `limit_s` (0: never)."""
        if self.episode is None or limit_s <= 0 or now_ns * 1e-9 - self.episode.info.start <= limit_s:
            return False
        self.close("timeout", now_ns)
        return True

    def _open(self, instruction: str, start_ns: int) -> EpisodeWriter:
        name = episode_dir_name(datetime.now(), self.next_index)
        info = EpisodeInfo(
            episode_id=name,
            index=self.next_index,
            instruction=instruction,
            clock=self.clock_kind,
            start=start_ns * 1e-9,
        )
        self.episode = EpisodeWriter(self.output_dir / name, self.typestore, info)
        self.next_index += 1
        return self.episode

    def _record(self, topic: str, msgtype: str, received_ns: int, data: bytes) -> None:
        if self.episode is None or topic not in self.recorded:
            return
        self.episode.write(topic, msgtype, received_ns, data)
        if topic == self.action_topic and self.is_terminate(data):
            self.close("terminated", received_ns)

"""One recorded episode (a rosbag2 directory + episode.json) -> its training steps, or the reason it is unusable.

A step is one RTAction on the action topic: its label is the action's tokens (tokenised from its fields
when the source sent none) and its observation is the newest camera frame stamped at or before the
action's header stamp. Bags are read with rosbags' AnyReader from the message definitions they store.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rosbags.highlevel import AnyReader

from rt_policy_node.data import bag_io
from rt_policy_node.data.alignment import NewestFrameSelector
from rt_policy_node.data.bag_io import EPISODE_FILE, METADATA_FILE, EpisodeInfo
from rt_policy_node.images import ImageError, compressed_to_rgb, image_to_rgb
from rt_policy_node.policies.action_tokenizer import ActionTokenizer
from rt_policy_node.policies.policy import Action, Mode

RAW_IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
MAX_COMPRESSED_PIXELS = 4096 * 4096


@dataclass(frozen=True)
class EpisodeTopics:
    """Where the builder finds camera frames, actions and the instruction in a bag (absolute names)."""

    image: str = "/camera/image_raw"
    action: str = "/rt/action"
    instruction: str = "/rt/instruction"


DEFAULT_TOPICS = EpisodeTopics()


class BadEpisode(Exception):
    """An episode the builder cannot use; the message is the reason its report gives."""


@dataclass
class EpisodeSteps:
    """An episode's steps, in action-stamp order."""

    instruction: str
    frames: np.ndarray  # uint8 [L, H, W, 3], after the frame transform
    tokens: np.ndarray  # uint8 [L, num_tokens]
    actions: np.ndarray  # float32 [L, num_tokens], the action values in the spec's order
    stamps: np.ndarray  # int64 [L, 2]: action stamp, frame stamp (ns)
    outcome: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    dropped_steps: dict[str, int] = field(default_factory=dict)


def read_sidecar(path: Path) -> EpisodeInfo | None:
    """The recorder's episode.json, or None when the episode has none (a recorder killed mid-episode)."""
    if not (path / EPISODE_FILE).is_file():
        return None
    try:
        return bag_io.read_episode(path)
    except (OSError, ValueError, TypeError) as err:
        raise BadEpisode(f"unreadable {EPISODE_FILE}: {err}") from None


def _stamp_ns(header: Any) -> int:
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def _action_values(msg: Any, tokenizer: ActionTokenizer) -> np.ndarray:
    """An RTAction's fields as one float32 row in the tokenizer's order."""
    action = Action(
        world_vector=np.asarray(msg.world_vector, np.float32),
        rotation_delta=np.asarray(msg.rotation_delta, np.float32),
        gripper_closedness=float(msg.gripper_closedness),
        base_displacement=np.asarray(msg.base_displacement, np.float32),
        base_rotation=float(msg.base_rotation),
        mode=Mode(int(msg.mode)),
    )
    fields = action.as_dict()
    return np.concatenate([fields[dim.name] for dim in tokenizer.spec]).astype(np.float32)


def _decode_frame(msg: Any, msgtype: str) -> np.ndarray:
    if msgtype == COMPRESSED_IMAGE:
        return compressed_to_rgb(msg.format, msg.data, MAX_COMPRESSED_PIXELS)
    return image_to_rgb(int(msg.height), int(msg.width), msg.encoding, int(msg.step), msg.data, bool(msg.is_bigendian))


class _Labels:
    """Collects actions as (stamp, values, tokens) and checks each one."""

    def __init__(self, tokenizer: ActionTokenizer) -> None:
        self.tokenizer = tokenizer
        self.valid = tokenizer.valid_token_mask()
        self.stamps: list[int] = []
        self.values: list[np.ndarray] = []
        self.tokens: list[np.ndarray] = []
        self.instructions: list[str] = []

    def add(self, msg: Any) -> None:
        n = len(self.stamps)
        try:
            values = _action_values(msg, self.tokenizer)
        except ValueError:
            raise BadEpisode(f"action {n} has mode {msg.mode}, expected 0, 1 or 2") from None
        if not np.isfinite(values).all():
            raise BadEpisode(f"action {n} has a non-finite value")
        if len(msg.tokens) == 0:
            tokens = self.tokenizer.encode({d.name: values[self.tokenizer.slices[d.name]] for d in self.tokenizer.spec})
        elif len(msg.tokens) == self.tokenizer.num_tokens:
            tokens = np.asarray(msg.tokens, np.int64)
            if not self.valid[np.arange(len(tokens)), tokens].all():
                raise BadEpisode(f"action {n} has tokens {tokens.tolist()} outside their valid ranges")
        else:
            raise BadEpisode(f"action {n} has {len(msg.tokens)} tokens, expected 0 or {self.tokenizer.num_tokens}")
        self.stamps.append(_stamp_ns(msg.header))
        self.values.append(values)
        self.tokens.append(tokens.astype(np.uint8))
        self.instructions.append(msg.instruction.strip())


def _check_counts(reader: AnyReader, sidecar: EpisodeInfo | None) -> None:
    """A bag holding fewer messages than the recorder counted was cut short."""
    topics = reader.topics
    for topic, expected in (sidecar.message_counts if sidecar else {}).items():
        stored = topics[topic].msgcount if topic in topics else 0
        if stored < expected:
            raise BadEpisode(f"truncated bag: {topic} has {stored} messages, {EPISODE_FILE} counted {expected}")


def _instruction(sidecar: EpisodeInfo | None, heard: list[str], from_actions: list[str]) -> str:
    """The episode's instruction: the sidecar's, else the last one on the topic, else the actions' own."""
    for text in (sidecar.instruction if sidecar else "", *reversed(heard), *from_actions):
        if text and text.strip():
            return text.strip()
    raise BadEpisode("unknown instruction (none in episode.json, on the instruction topic or in the actions)")


def read_episode(
    path: str | Path,
    tokenizer: ActionTokenizer,
    frame_transform: Callable[[np.ndarray], np.ndarray],
    topics: EpisodeTopics = DEFAULT_TOPICS,
) -> EpisodeSteps:
    """Reads one episode directory; raises BadEpisode with the reason when it cannot be used.

    `frame_transform` maps each chosen HxWx3 uint8 RGB frame to the stored frame (the resize), once per frame.
    """
    path = Path(path)
    if not (path / METADATA_FILE).is_file():
        raise BadEpisode(
            f"unfinished bag (no {METADATA_FILE}: its recorder was stopped mid-episode); rt-bag-recover salvages it"
        )
    sidecar = read_sidecar(path)
    try:
        with AnyReader([path]) as reader:
            _check_counts(reader, sidecar)
            by_topic = {c.topic: c for c in reader.connections}
            if topics.action not in by_topic:
                raise BadEpisode(f"no actions on {topics.action}")
            if topics.image not in by_topic:
                raise BadEpisode(f"no camera frames on {topics.image}")
            labels = _Labels(tokenizer)
            heard: list[str] = []
            small = [by_topic[topics.action]] + (
                [by_topic[topics.instruction]] if topics.instruction in by_topic else []
            )
            for connection, _, raw in reader.messages(connections=small):
                msg = reader.deserialize(raw, connection.msgtype)
                if connection.topic == topics.action:
                    labels.add(msg)
                else:
                    heard.append(msg.data)
            if not labels.stamps:
                raise BadEpisode(f"no actions on {topics.action}")
            instruction = _instruction(sidecar, heard, labels.instructions)
            order = np.argsort(np.asarray(labels.stamps, np.int64), kind="stable")
            selector = NewestFrameSelector(np.asarray(labels.stamps, np.int64)[order])
            image_connection = by_topic[topics.image]
            if image_connection.msgtype not in (RAW_IMAGE, COMPRESSED_IMAGE):
                raise BadEpisode(f"{topics.image} carries {image_connection.msgtype}, not an image type")
            frame_count = 0
            for connection, _, raw in reader.messages(connections=[image_connection]):
                msg = reader.deserialize(raw, connection.msgtype)
                selector.offer(_stamp_ns(msg.header), msg)
                frame_count += 1
    except BadEpisode:
        raise
    except Exception as err:  # rosbags reports damaged storage with many exception types
        raise BadEpisode(f"unreadable or truncated bag: {type(err).__name__}: {err}") from None
    if frame_count == 0:
        raise BadEpisode(f"no camera frames on {topics.image}")
    keep = selector.has_frame
    if not keep.any():
        raise BadEpisode(f"no camera frame at or before any of the {len(keep)} actions")
    frames = _transform_frames(
        [f for f, k in zip(selector.frames, keep, strict=True) if k], image_connection.msgtype, frame_transform
    )
    kept = order[keep]
    dropped = int((~keep).sum())
    return EpisodeSteps(
        instruction=instruction,
        frames=frames,
        tokens=np.stack(labels.tokens)[kept],
        actions=np.stack(labels.values)[kept],
        stamps=np.stack([selector.action_stamps[keep], selector.frame_stamps[keep]], axis=1),
        outcome=(sidecar.outcome or "") if sidecar else "",
        extra=dict(sidecar.extra) if sidecar else {},
        dropped_steps={"no camera frame at or before the action": dropped} if dropped else {},
    )


def _transform_frames(messages: list[Any], msgtype: str, transform: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Decodes and transforms each distinct chosen frame once (actions can share a frame)."""
    done: dict[int, np.ndarray] = {}
    out = []
    for i, msg in enumerate(messages):
        if id(msg) not in done:
            try:
                done[id(msg)] = transform(_decode_frame(msg, msgtype))
            except ImageError as err:
                raise BadEpisode(f"frame for action {i} cannot be decoded: {err}") from None
        out.append(done[id(msg)])
    return np.stack(out)

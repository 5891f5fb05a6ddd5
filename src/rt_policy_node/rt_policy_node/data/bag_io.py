"""Episode bags: one rosbag2 directory (MCAP) per episode, written with rosbags, plus an `episode.json` sidecar.

Layout (a contract with the dataset builder and the collector):

    <output_dir>/episode_<YYYYmmdd-HHMMSS>_<NNNN>/
        metadata.yaml                                    rosbag2 metadata (`ros2 bag info` reads it)
        episode_<YYYYmmdd-HHMMSS>_<NNNN>.mcap            messages as CDR, with full message definitions
        episode.json                                     `EpisodeInfo`, written when the episode closes

Every connection stores its complete message definition (dependencies included), so readers such as
rosbags' AnyReader, `ros2 bag` and Foxglove need no type registration, project types included.
ROS-free: message type definitions come from .msg files in the packages' share directories.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

EPISODE_FILE = "episode.json"
OUTCOMES = ("terminated", "new_instruction", "timeout", "stopped", "shutdown")
EPISODE_DIR = re.compile(r"^episode_\d{8}-\d{6}_(\d{4,})$")


def make_typestore(packages: Mapping[str, str | Path] | None = None) -> Typestore:
    """ROS 2 Kilted's standard types plus every `msg/*.msg` of `packages` (name -> share directory)."""
    typestore = get_typestore(Stores.ROS2_KILTED)
    for package, share in (packages or {}).items():
        register_package_types(typestore, package, share)
    return typestore


def register_package_types(typestore: Typestore, package: str, share: str | Path) -> list[str]:
    """Registers `<share>/msg/*.msg` as `package/msg/<Name>`; returns the type names added."""
    types = {}
    for msg_file in sorted(Path(share, "msg").glob("*.msg")):
        types.update(get_types_from_msg(msg_file.read_text(), f"{package}/msg/{msg_file.stem}"))
    if not types:
        raise FileNotFoundError(f"no message definitions in {Path(share, 'msg')}")
    typestore.register(types)
    return sorted(types)


@dataclass
class EpisodeInfo:
    """The episode.json sidecar."""

    episode_id: str  # the directory name
    index: int  # NNNN
    instruction: str
    clock: str  # "sim" (ROS /clock) or "wall" (system time): what `start` and `end` count
    start: float  # seconds on `clock`
    end: float | None = None
    outcome: str | None = None  # one of OUTCOMES once closed
    message_counts: dict[str, int] = field(default_factory=dict)  # topic as in the bag -> messages
    bag: str = ""  # the .mcap file name
    extra: dict[str, Any] = field(default_factory=dict)  # free for other tools (e.g. expert_success)


def episode_dir_name(wall_time: datetime, index: int) -> str:
    return f"episode_{wall_time:%Y%m%d-%H%M%S}_{index:04d}"


def list_episodes(output_dir: str | Path) -> list[Path]:
    """Episode directories under `output_dir`, in index order."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := EPISODE_DIR.match(p.name))]
    return [p for _, p in sorted(found)]


def next_episode_index(output_dir: str | Path) -> int:
    """One past the highest index already in `output_dir`, so runs into one directory never collide."""
    episodes = list_episodes(output_dir)
    return int(EPISODE_DIR.match(episodes[-1].name).group(1)) + 1 if episodes else 0


def read_episode(directory: str | Path) -> EpisodeInfo:
    return EpisodeInfo(**json.loads(Path(directory, EPISODE_FILE).read_text()))


def write_episode(directory: str | Path, info: EpisodeInfo) -> None:
    """Writes episode.json atomically (a reader never sees half a file)."""
    path = Path(directory, EPISODE_FILE)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def update_episode_extra(directory: str | Path, **values: Any) -> EpisodeInfo:
    """Merges `values` into the sidecar's `extra` dict (e.g. the collector's `expert_success`)."""
    info = read_episode(directory)
    info.extra.update(values)
    write_episode(directory, info)
    return info


class EpisodeWriter:
    """Writes one episode: serialized messages in, a closed rosbag2 directory + episode.json out."""

    def __init__(self, directory: str | Path, typestore: Typestore, info: EpisodeInfo) -> None:
        self.directory = Path(directory)
        self.typestore = typestore
        self.info = info
        self.info.bag = f"{self.directory.name}.mcap"
        self._writer = Writer(self.directory, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections: dict[tuple[str, str], Connection] = {}

    def write(self, topic: str, msgtype: str, timestamp_ns: int, data: bytes | memoryview) -> None:
        """Appends one CDR-serialized message of type `msgtype` (e.g. 'sensor_msgs/msg/Image')."""
        key = (topic, msgtype)
        connection = self._connections.get(key)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
            self._connections[key] = connection
        self._writer.write(connection, timestamp_ns, data)
        self.info.message_counts[topic] = self.info.message_counts.get(topic, 0) + 1

    def close(self, outcome: str, end: float) -> EpisodeInfo:
        """Finishes the MCAP file and metadata.yaml, then writes the sidecar."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        self._writer.close()
        self.info.outcome = outcome
        self.info.end = end
        write_episode(self.directory, self.info)
        return self.info

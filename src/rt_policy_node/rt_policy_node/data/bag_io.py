"""Episode bags: one rosbag2 directory (MCAP) per episode, written with rosbags, plus an `episode.json` sidecar.

Layout (a contract with the dataset builder and the collector):

    <output_dir>/episode_<YYYYmmdd-HHMMSS>_<NNNN>/
        metadata.yaml                                    rosbag2 metadata (`ros2 bag info` reads it); its
                                                         presence marks a finished bag
        episode_<YYYYmmdd-HHMMSS>_<NNNN>.mcap            messages as CDR, with full message definitions
        episode.json                                     `EpisodeInfo`, written when the episode closes
        episode.open.json                                `EpisodeInfo` so far, only while the episode is open
        episode_<YYYYmmdd-HHMMSS>_<NNNN>.mcap.truncated  after a recovery only: the file the killed writer left

Every connection stores its complete message definition (dependencies included), so readers such as
rosbags' AnyReader, `ros2 bag` and Foxglove need no type registration, project types included.

A killed writer (SIGKILL, OOM kill, power cut) leaves an .mcap without summary or footer and no metadata.yaml.
`EpisodeWriter.flush` ends the pending MCAP chunk and hands it to the OS, so such a file holds every message
written before the last flush; `recover_episode` turns it back into a finished bag (outcome "recovered").
ROS-free: message type definitions come from .msg files in the packages' share directories.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import get_qos
from rosbags.typesys import Stores, TypesysError, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from rt_policy_node.data.mcap_salvage import Channel, McapError, McapSalvage, Message, Schema

EPISODE_FILE = "episode.json"
OPEN_EPISODE_FILE = "episode.open.json"
METADATA_FILE = "metadata.yaml"
TRUNCATED_SUFFIX = ".truncated"
STAGING_DIR = ".recovering"
RECOVERED = "recovered"  # the outcome of an episode whose recorder was killed; see `recover_episode`
OUTCOMES = ("terminated", "new_instruction", "timeout", "stopped", "shutdown", RECOVERED)
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
    clock: str  # "sim" (ROS /clock) or "wall" (system time): what `start` and `end` count; "unknown" in a
    # recovered episode whose recorder left no episode.open.json
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


def write_episode(directory: str | Path, info: EpisodeInfo, name: str = EPISODE_FILE) -> None:
    """Writes the sidecar atomically (a reader never sees half a file)."""
    path = Path(directory, name)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(asdict(info), indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def update_episode_extra(directory: str | Path, **values: Any) -> EpisodeInfo:
    """Merges `values` into the sidecar's `extra` dict (e.g. the collector's `expert_success`)."""
    info = read_episode(directory)
    info.extra.update(values)
    write_episode(directory, info)
    return info


class EpisodeWriter:
    """Writes one episode: serialized messages in, a closed rosbag2 directory + episode.json out.

    While open, the .mcap file is flock()ed, so `recover_episode` leaves a bag that is being written alone.
    """

    def __init__(self, directory: str | Path, typestore: Typestore, info: EpisodeInfo) -> None:
        self.directory = Path(directory)
        self.typestore = typestore
        self.info = info
        self.info.bag = f"{self.directory.name}.mcap"
        self._writer = Writer(self.directory, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._storage = self._writer.storage  # rosbags 0.11.9's McapWriter: chunks in `chunk`, the file in `bio`
        fcntl.flock(self._storage.bio.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._connections: dict[tuple[str, str], Connection] = {}
        write_episode(self.directory, self.info, OPEN_EPISODE_FILE)
        self.flush()

    def write(self, topic: str, msgtype: str, timestamp_ns: int, data: bytes | memoryview) -> None:
        """Appends one CDR-serialized message of type `msgtype` (e.g. 'sensor_msgs/msg/Image')."""
        key = (topic, msgtype)
        connection = self._connections.get(key)
        if connection is None:
            connection = self._writer.add_connection(topic, msgtype, typestore=self.typestore)
            self._connections[key] = connection
        self._writer.write(connection, timestamp_ns, data)
        self.info.message_counts[topic] = self.info.message_counts.get(topic, 0) + 1

    def flush(self, sync: bool = False) -> None:
        """Ends the pending chunk and hands the file's buffer to the OS: a killed process then loses nothing
        written so far (with `sync`, neither does a power cut)."""
        if self._storage.chunk.msgs:
            self._storage.close_chunk()
        self._storage.bio.flush()
        if sync:
            os.fsync(self._storage.bio.fileno())

    def close(self, outcome: str, end: float) -> EpisodeInfo:
        """Finishes the MCAP file and metadata.yaml, then writes the sidecar."""
        if outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {outcome!r}")
        self._writer.close()
        self.info.outcome = outcome
        self.info.end = end
        write_episode(self.directory, self.info)
        Path(self.directory, OPEN_EPISODE_FILE).unlink(missing_ok=True)
        return self.info


# -- recovery of episodes whose recorder was killed ------------------------------------------------------


class RecoveryError(Exception):
    """An unfinished episode that cannot be recovered; nothing in it was changed."""


@dataclass
class Recovery:
    """What `recover_episode` did to one episode directory."""

    directory: Path
    status: str  # "recovered", "intact" (a finished bag: untouched) or "busy" (a live writer holds it: untouched)
    message_counts: dict[str, int] = field(default_factory=dict)
    kept_bytes: int = 0  # of the killed writer's file: the whole records at its start
    dropped_bytes: int = 0  # the cut-off rest
    stop: str = ""  # where and why reading the killed writer's file ended

    def describe(self) -> str:
        if self.status != "recovered":
            return f"{self.directory.name}: {self.status}, left untouched"
        counts = ", ".join(f"{topic} {n}" for topic, n in sorted(self.message_counts.items())) or "no messages"
        dropped = f"dropped the last {self.dropped_bytes} bytes" if self.dropped_bytes else "nothing dropped"
        return (
            f"{self.directory.name}: recovered {sum(self.message_counts.values())} messages ({counts}); "
            f"{dropped} ({self.stop}); original kept as {self.directory.name}.mcap{TRUNCATED_SUFFIX}"
        )


def unfinished_episodes(output_dir: str | Path) -> list[Path]:
    """Episode directories under `output_dir` without metadata.yaml: open now, or left by a killed writer."""
    return [p for p in list_episodes(output_dir) if not (p / METADATA_FILE).is_file()]


def recover_unfinished(output_dir: str | Path) -> Iterator[tuple[Path, Recovery | Exception]]:
    """Recovers every episode a killed writer left in `output_dir`; yields each with what happened or why it could
    not be recovered (a damaged old episode must not stop the caller, e.g. a recorder starting a new run)."""
    for directory in unfinished_episodes(output_dir):
        try:
            yield directory, recover_episode(directory)
        except Exception as err:
            yield directory, err


def recover_episode(directory: str | Path) -> Recovery:
    """Makes the episode a killed writer left into a finished bag holding every whole message it had written.

    The killed writer's file is read record by record up to the first incomplete one and rewritten (same topics,
    message definitions and QoS) into a staging directory; once that bag reads back with the same message counts,
    the original is renamed to `<name>.mcap.truncated` (kept, never deleted), the new bag and metadata.yaml take
    its place and episode.json is written with outcome "recovered" (from episode.open.json when there is one).
    A finished bag, or one whose writer is alive, is left untouched. Safe to run again after being killed itself.
    """
    directory = Path(directory)
    if (directory / METADATA_FILE).is_file():
        return Recovery(directory, "intact")
    bag = directory / f"{directory.name}.mcap"
    original = bag.with_name(bag.name + TRUNCATED_SUFFIX)
    source = original if original.is_file() else bag
    if not source.is_file():
        raise RecoveryError(f"{directory} has neither metadata.yaml nor {bag.name}")
    staging = directory / STAGING_DIR
    with source.open("rb") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return Recovery(directory, "busy")
        shutil.rmtree(staging, ignore_errors=True)  # left by a recovery that was itself killed
        salvage = McapSalvage(file, os.fstat(file.fileno()).st_size)
        try:
            counts, span = _rewrite(salvage, staging / directory.name)
            _verify(staging / directory.name, counts)
            recovery = Recovery(
                directory, "recovered", counts, salvage.good_bytes, salvage.size - salvage.good_bytes, salvage.stop
            )
            info = _recovered_info(directory, recovery, span)
        except BaseException as err:
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(err, McapError):
                raise RecoveryError(f"{source}: {err}") from err
            raise
        if source == bag:
            os.replace(bag, original)
        os.replace(staging / directory.name / bag.name, bag)
        write_episode(directory, info)
        os.replace(staging / directory.name / METADATA_FILE, directory / METADATA_FILE)
    (directory / OPEN_EPISODE_FILE).unlink(missing_ok=True)
    shutil.rmtree(staging)
    return recovery


def _rewrite(salvage: McapSalvage, path: Path) -> tuple[dict[str, int], tuple[int, int] | None]:
    """Writes the salvaged records as a new bag at `path`; returns its counts per topic and its (first, last)
    message time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = Writer(path, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
    writer.open()
    schemas: dict[int, Schema] = {}
    channels: dict[int, Connection] = {}
    by_topic: dict[tuple[str, str], Connection] = {}
    counts: dict[str, int] = {}
    first, last = 2**63 - 1, -1
    try:
        for record in salvage.records():
            if isinstance(record, Schema):
                schemas[record.id] = record
            elif isinstance(record, Channel):
                schema = schemas[record.schema_id]
                key = (record.topic, schema.name)
                if key not in by_topic:
                    by_topic[key] = writer.add_connection(
                        record.topic,
                        schema.name,
                        msgdef=schema.data,
                        rihs01=_rihs01(schema),
                        serialization_format=record.message_encoding,
                        offered_qos_profiles=get_qos(record.metadata),
                    )
                channels[record.id] = by_topic[key]
            elif isinstance(record, Message):
                connection = channels[record.channel_id]
                writer.write(connection, record.log_time, record.data)
                counts[connection.topic] = counts.get(connection.topic, 0) + 1
                first, last = min(first, record.log_time), max(last, record.log_time)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return counts, (first, last) if counts else None


def _rihs01(schema: Schema) -> str:
    """The type hash rosbag2 stores beside a definition, computed from the definition itself."""
    if schema.encoding != "ros2msg":
        raise RecoveryError(f"cannot recover {schema.name}: schema encoding {schema.encoding!r} is not ros2msg")
    typestore = get_typestore(Stores.EMPTY)
    try:
        typestore.register(get_types_from_msg(schema.data, schema.name))
        return typestore.hash_rihs01(schema.name)
    except TypesysError as err:
        raise RecoveryError(f"cannot recover {schema.name}: its stored definition does not parse: {err}") from err


def _verify(path: Path, counts: dict[str, int]) -> None:
    """Reads every message of the new bag back, as the dataset builder does; its counts must be the ones written."""
    read: dict[str, int] = {}
    with AnyReader([path]) as reader:
        for connection, _, _ in reader.messages():
            read[connection.topic] = read.get(connection.topic, 0) + 1
    if read != counts:
        raise RecoveryError(f"the recovered bag reads back {read}, expected {counts}")


def _recovered_info(directory: Path, recovery: Recovery, span: tuple[int, int] | None) -> EpisodeInfo:
    """The sidecar of a recovered episode: what the writer knew at the start (when it left a readable record of
    it), completed from the bag."""
    info = None
    for known in (directory / OPEN_EPISODE_FILE, directory / EPISODE_FILE):
        try:
            info = EpisodeInfo(**json.loads(known.read_text()))
            break
        except (OSError, ValueError, TypeError):
            continue
    if info is None:
        match = EPISODE_DIR.match(directory.name)
        start = span[0] * 1e-9 if span else 0.0
        info = EpisodeInfo(directory.name, int(match.group(1)) if match else 0, "", "unknown", start)
    info.outcome = RECOVERED
    info.end = span[1] * 1e-9 if span else info.start
    info.message_counts = dict(recovery.message_counts)
    info.bag = f"{directory.name}.mcap"
    info.extra["recovery"] = {
        "original": f"{directory.name}.mcap{TRUNCATED_SUFFIX}",
        "kept_bytes": recovery.kept_bytes,
        "dropped_bytes": recovery.dropped_bytes,
        "stop": recovery.stop,
    }
    return info

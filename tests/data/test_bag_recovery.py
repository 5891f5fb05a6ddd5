"""recover_episode (ROS-free): what a killed episode writer leaves becomes a finished bag, whatever the cut."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.rosbag2.storage_mcap import McapReader

from rt_policy_node.data.bag_io import (
    OPEN_EPISODE_FILE,
    EpisodeInfo,
    EpisodeWriter,
    RecoveryError,
    make_typestore,
    read_episode,
    recover_episode,
    unfinished_episodes,
)

NAME = "episode_20250102-030405_0042"
STRING, IMAGE = "std_msgs/msg/String", "sensor_msgs/msg/Image"


@pytest.fixture(scope="module")
def typestore():
    return make_typestore()


def string(typestore, text: str) -> bytes:
    return bytes(typestore.serialize_cdr(typestore.types[STRING](data=text), STRING))


def image(typestore, value: int) -> bytes:
    types = typestore.types
    header = types["std_msgs/msg/Header"](types["builtin_interfaces/msg/Time"](sec=value, nanosec=0), "cam")
    msg = types[IMAGE](header, 4, 4, "rgb8", 0, 12, np.full(48, value, np.uint8))
    return bytes(typestore.serialize_cdr(msg, IMAGE))


def open_episode(root, typestore) -> tuple[EpisodeWriter, list[tuple[str, int, bytes]]]:
    """An open episode: strings, then (after a flush) images too, flushed every 5 messages; and what it holds."""
    writer = EpisodeWriter(root / NAME, typestore, EpisodeInfo(NAME, 42, "sort the cubes", "sim", 1.0))
    written = []
    for i in range(40):
        topic, msgtype, data = ("/chat", STRING, string(typestore, f"message {i:04d}"))
        if i >= 12 and i % 2:
            topic, msgtype, data = ("/camera/image_raw", IMAGE, image(typestore, i))
        writer.write(topic, msgtype, 1_000_000_000 + i, data)
        written.append((topic, 1_000_000_000 + i, data))
        if i % 5 == 4:
            writer.flush()
    return writer, written


def killed_copy(writer: EpisodeWriter, root, size: int | None = None):
    """The episode directory as a SIGKILL would leave it: the .mcap as the OS holds it (cut to `size`)."""
    directory = root / writer.directory.name
    directory.mkdir(parents=True)
    data = (writer.directory / f"{NAME}.mcap").read_bytes()
    (directory / f"{NAME}.mcap").write_bytes(data[:size])
    shutil.copy(writer.directory / OPEN_EPISODE_FILE, directory / OPEN_EPISODE_FILE)
    return directory


def read_all(directory) -> list[tuple[str, int, bytes]]:
    with AnyReader([directory]) as reader:
        return [(c.topic, t, bytes(raw)) for c, t, raw in reader.messages()]


def files(directory) -> dict[str, tuple[int, int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.stat().st_size, p.read_bytes()) for p in directory.iterdir()}


def test_a_cut_anywhere_keeps_exactly_the_whole_messages_before_it(tmp_path, typestore):
    writer, written = open_episode(tmp_path / "live", typestore)
    full = (writer.directory / f"{NAME}.mcap").read_bytes()
    ends = [full.index(data) + len(data) for _, _, data in written]  # where each message record ends
    cuts = {0, 3, 8, 20, len(full)} | set(range(8, len(full), 250)) | {e - d for e in ends[::4] for d in (0, 1)}
    for cut in sorted(cuts):
        directory = killed_copy(writer, tmp_path / f"cut_{cut}", cut)
        recovery = recover_episode(directory)
        expected = [m for m, end in zip(written, ends, strict=True) if end <= cut]
        assert read_all(directory) == expected, f"cut at byte {cut} of {len(full)}: {recovery.stop}"
        assert recovery.kept_bytes + recovery.dropped_bytes == cut
        info = read_episode(directory)
        assert info.message_counts == recovery.message_counts
        assert (info.outcome, info.instruction, info.clock, info.index, info.start) == (
            "recovered",
            "sort the cubes",
            "sim",
            42,
            1.0,
        )
        assert info.end == (expected[-1][1] * 1e-9 if expected else 1.0)
        assert (directory / f"{NAME}.mcap.truncated").read_bytes() == full[:cut]
        assert not (directory / OPEN_EPISODE_FILE).exists() and not (directory / ".recovering").exists()
    writer.close("stopped", 2.0)


def test_a_flush_puts_every_message_written_so_far_on_disk(tmp_path, typestore):
    writer = EpisodeWriter(tmp_path / "live" / NAME, typestore, EpisodeInfo(NAME, 42, "wait", "wall", 0.0))
    for i in range(20):
        writer.write("/chat", STRING, i, string(typestore, f"m{i}"))
    assert recover_episode(killed_copy(writer, tmp_path / "before")).message_counts == {}
    writer.flush()
    assert recover_episode(killed_copy(writer, tmp_path / "after")).message_counts == {"/chat": 20}
    writer.close("stopped", 1.0)


def test_a_zero_filled_tail_after_a_power_cut_is_where_reading_stops(tmp_path, typestore):
    writer, written = open_episode(tmp_path / "live", typestore)
    directory = killed_copy(writer, tmp_path / "power_cut")
    mcap = directory / f"{NAME}.mcap"
    mcap.write_bytes(mcap.read_bytes() + bytes(4096))
    (directory / OPEN_EPISODE_FILE).write_bytes(bytes(100))
    recovery = recover_episode(directory)
    assert "zero-filled" in recovery.stop and recovery.dropped_bytes == 4096
    assert read_all(directory) == written
    info = read_episode(directory)  # the zeroed episode.open.json is replaced by what the bag tells
    assert (info.clock, info.index, info.instruction) == ("unknown", 42, "")
    assert (info.start, info.end) == (written[0][1] * 1e-9, written[-1][1] * 1e-9)
    writer.close("stopped", 2.0)


def test_whole_compressed_chunks_are_kept_and_a_cut_one_is_dropped(tmp_path, typestore):
    directory = tmp_path / NAME
    writer = Writer(directory, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
    writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    writer.open()
    connection = writer.add_connection("/chat", STRING, typestore=typestore)
    big = [string(typestore, f"{i}" * 600_000) for i in range(4)]  # two messages fill a 1 MiB chunk
    for i, data in enumerate(big):
        writer.write(connection, i, data)
    writer.close()
    reader = McapReader(directory / f"{NAME}.mcap")
    reader.open()
    second = reader.chunks[1].chunk_start_offset
    reader.close()
    mcap = directory / f"{NAME}.mcap"
    mcap.write_bytes(mcap.read_bytes()[: second + 100])
    (directory / "metadata.yaml").unlink()
    recovery = recover_episode(directory)
    assert "0x06" in recovery.stop and recovery.kept_bytes == second
    assert read_all(directory) == [("/chat", 0, big[0]), ("/chat", 1, big[1])]
    info = read_episode(directory)
    assert (info.clock, info.index, info.instruction, info.start) == ("unknown", 42, "", 0.0)


def test_an_intact_bag_and_one_being_written_are_left_untouched(tmp_path, typestore):
    writer, _ = open_episode(tmp_path, typestore)
    before = files(writer.directory)
    assert unfinished_episodes(tmp_path) == [writer.directory]
    assert recover_episode(writer.directory).status == "busy"
    assert files(writer.directory) == before
    writer.close("terminated", 2.0)
    before = files(writer.directory)
    assert unfinished_episodes(tmp_path) == []
    assert recover_episode(writer.directory).status == "intact"
    assert files(writer.directory) == before
    assert read_episode(writer.directory).outcome == "terminated"


def test_a_file_that_is_not_mcap_is_refused_and_kept(tmp_path):
    directory = tmp_path / NAME
    directory.mkdir()
    (directory / f"{NAME}.mcap").write_bytes(b"PK\x03\x04 this is a zip file")
    before = files(directory)
    with pytest.raises(RecoveryError, match="not an MCAP file"):
        recover_episode(directory)
    assert files(directory) == before
    (directory / f"{NAME}.mcap").unlink()
    with pytest.raises(RecoveryError, match=r"neither metadata\.yaml nor"):
        recover_episode(directory)


def test_a_recovery_killed_halfway_runs_again_from_the_kept_original(tmp_path, typestore):
    writer, written = open_episode(tmp_path / "live", typestore)
    directory = killed_copy(writer, tmp_path / "killed")
    original = (directory / f"{NAME}.mcap").read_bytes()
    (directory / f"{NAME}.mcap").rename(directory / f"{NAME}.mcap.truncated")
    (directory / ".recovering" / NAME).mkdir(parents=True)
    (directory / ".recovering" / NAME / f"{NAME}.mcap").write_bytes(b"half a bag")
    assert recover_episode(directory).status == "recovered"
    assert read_all(directory) == written
    assert (directory / f"{NAME}.mcap.truncated").read_bytes() == original
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        ["episode.json", "metadata.yaml", f"{NAME}.mcap", f"{NAME}.mcap.truncated"]
    )
    writer.close("stopped", 2.0)


def test_a_finished_bag_without_metadata_yaml_is_read_to_its_data_end(tmp_path, typestore):
    writer, written = open_episode(tmp_path, typestore)
    writer.close("terminated", 2.0)
    (writer.directory / "metadata.yaml").unlink()  # killed between the .mcap's footer and metadata.yaml
    recovery = recover_episode(writer.directory)
    assert recovery.stop.startswith("end of the data section") and recovery.dropped_bytes > 0
    assert read_all(writer.directory) == written
    assert read_episode(writer.directory).outcome == "recovered"

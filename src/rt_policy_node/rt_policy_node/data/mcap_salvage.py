"""Reads what a killed writer left of an MCAP file: every complete record, up to the first incomplete one.

An MCAP file is a magic, then records (1-byte opcode, uint64 length, body); chunk records hold schema, channel
and message records of their own. A file cut off by SIGKILL, an OOM kill or a power cut has no summary and no
footer, so indexed readers refuse it. `McapSalvage` walks it from the start instead and stops cleanly at the
first record that is cut off or damaged (a power cut can also leave a zero-filled tail). ROS-free.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from rosbags.rosbag2.errors import ReaderError
from rosbags.rosbag2.storage_mcap import decompress

MAGIC = b"\x89MCAP0\r\n"
OP_HEADER, OP_FOOTER, OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK, OP_DATA_END = (
    0x01,
    0x02,
    0x03,
    0x04,
    0x05,
    0x06,
    0x0F,
)
RECORD_HEAD = struct.Struct("<BQ")
CHUNK_HEAD = struct.Struct("<QQQI")
MESSAGE_HEAD = struct.Struct("<HIQQ")


class McapError(Exception):
    """The file is not an MCAP file (or not one this reader can salvage)."""


class BadRecord(Exception):
    """A record that runs past the data at hand or names a schema or channel never defined."""


@dataclass(frozen=True)
class Schema:
    id: int
    name: str  # the message type, e.g. 'sensor_msgs/msg/Image'
    encoding: str  # 'ros2msg' or 'ros2idl'
    data: str  # the full message definition


@dataclass(frozen=True)
class Channel:
    id: int
    schema_id: int
    topic: str
    message_encoding: str
    metadata: bytes  # the serialized map<string, string>, as rosbags' storage parses it


@dataclass(frozen=True)
class Message:
    channel_id: int
    log_time: int  # ns
    data: bytes


class _Fields:
    """Little-endian fields read from one record body; running past its end raises BadRecord."""

    def __init__(self, body: memoryview) -> None:
        self.body, self.pos = body, 0

    def take(self, size: int) -> memoryview:
        if self.pos + size > len(self.body):
            raise BadRecord
        self.pos += size
        return self.body[self.pos - size : self.pos]

    def unpack(self, fmt: struct.Struct) -> tuple:
        return fmt.unpack(self.take(fmt.size))

    def sized(self) -> bytes:
        (size,) = struct.unpack("<I", self.take(4))
        return bytes(self.take(size))

    def string(self) -> str:
        return self.sized().decode()


class McapSalvage:
    """Iterates the schema, channel and message records of a possibly cut-off MCAP file, in file order.

    Once `records()` is exhausted, `good_bytes` is the length of the prefix made of whole records and `stop`
    says where and why reading ended.
    """

    def __init__(self, file: BinaryIO, size: int) -> None:
        self.file, self.size = file, size
        self.good_bytes = 0
        self.stop = ""
        self._schemas: set[int] = set()
        self._channels: set[int] = set()

    def records(self) -> Iterator[Schema | Channel | Message]:
        magic = self.file.read(len(MAGIC))
        if magic != MAGIC[: len(magic)]:
            raise McapError("not an MCAP file (bad magic)")
        if len(magic) < len(MAGIC):
            self.stop = f"file ends inside the magic ({len(magic)} bytes)"
            return
        self.good_bytes = offset = len(MAGIC)
        while True:
            head = self.file.read(RECORD_HEAD.size)
            if len(head) < RECORD_HEAD.size:
                self.stop = "end of file after a whole record" if not head else f"cut-off record at byte {offset}"
                return
            opcode, length = RECORD_HEAD.unpack(head)
            end = offset + RECORD_HEAD.size + length
            if opcode == 0:
                self.stop = f"invalid opcode 0 at byte {offset} (a zero-filled tail)"
                return
            if offset == len(MAGIC) and opcode != OP_HEADER:
                raise McapError(f"not an MCAP file (first record has opcode {opcode:#04x}, not a header)")
            if opcode in (OP_DATA_END, OP_FOOTER):
                self.stop = "end of the data section (the writer had finished)"
                return
            cut = end > self.size
            if opcode in (OP_SCHEMA, OP_CHANNEL, OP_MESSAGE, OP_CHUNK) and (opcode == OP_CHUNK or not cut):
                body = memoryview(self.file.read(min(end, self.size) - offset - RECORD_HEAD.size))
                try:
                    yield from (self._chunk(body, cut) if opcode == OP_CHUNK else self._one(opcode, body))
                except (BadRecord, ReaderError, UnicodeDecodeError) as err:
                    what = "cut-off" if cut else "damaged"
                    self.stop = f"{what} record (opcode {opcode:#04x}) at byte {offset}" + (
                        f": {err}" if str(err) else ""
                    )
                    return
            elif not cut:
                self.file.seek(end)
            if cut:
                self.stop = f"cut-off record (opcode {opcode:#04x}) at byte {offset}" + (
                    " (its whole messages kept)" if opcode == OP_CHUNK else ""
                )
                return
            self.good_bytes = offset = end

    def _chunk(self, body: memoryview, cut: bool) -> Iterator[Schema | Channel | Message]:
        """The records inside a chunk; of a cut-off chunk, those that are whole (uncompressed chunks only)."""
        fields = _Fields(body)
        _, _, uncompressed_size, crc = fields.unpack(CHUNK_HEAD)
        compression = fields.string()
        (size,) = struct.unpack("<Q", fields.take(8))
        if cut:
            if compression:
                raise BadRecord(f"a {compression} chunk cannot be read in part")
            inner = body[fields.pos : fields.pos + size]
        else:
            inner = memoryview(decompress(bytes(fields.take(size)), compression, uncompressed_size, crc))
        pos = 0
        while pos + RECORD_HEAD.size <= len(inner):
            opcode, length = RECORD_HEAD.unpack(inner[pos : pos + RECORD_HEAD.size])
            start, pos = pos + RECORD_HEAD.size, pos + RECORD_HEAD.size + length
            if pos > len(inner):
                break
            yield from self._one(opcode, inner[start:pos])
        if pos != len(inner) and not cut:
            raise BadRecord("chunk records overrun the chunk")

    def _one(self, opcode: int, body: memoryview) -> Iterator[Schema | Channel | Message]:
        fields = _Fields(body)
        if opcode == OP_SCHEMA:
            (schema_id,) = struct.unpack("<H", fields.take(2))
            schema = Schema(schema_id, fields.string(), fields.string(), fields.string())
            self._schemas.add(schema_id)
            yield schema
        elif opcode == OP_CHANNEL:
            channel_id, schema_id = struct.unpack("<HH", fields.take(4))
            if schema_id not in self._schemas:
                raise BadRecord(f"channel {channel_id} names unknown schema {schema_id}")
            channel = Channel(channel_id, schema_id, fields.string(), fields.string(), fields.sized())
            self._channels.add(channel_id)
            yield channel
        elif opcode == OP_MESSAGE:
            channel_id, _, log_time, _ = fields.unpack(MESSAGE_HEAD)
            if channel_id not in self._channels:
                raise BadRecord(f"message on unknown channel {channel_id}")
            yield Message(channel_id, log_time, bytes(body[MESSAGE_HEAD.size :]))

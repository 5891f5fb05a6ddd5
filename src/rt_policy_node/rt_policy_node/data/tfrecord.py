"""TFRecord files of `tf.train.Example` records, read without TensorFlow.

A TFRecord file is a sequence of records, each framed as

    uint64 length (little-endian) | uint32 masked CRC-32C of the length bytes | data | uint32 masked CRC-32C of data

where masking rotates the CRC right by 15 bits and adds 0xa282ead8. Every CRC is checked (google-crc32c), so a
damaged or cut-off file is reported with the record and byte offset where it went wrong, never misread.

`tf.train.Example` (TensorFlow's example.proto and feature.proto) is a map from feature name to one list of
bytes, floats or int64s. Its message classes are built here at run time from a descriptor with protobuf's
own machinery, so no generated code and no protoc are needed.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import google_crc32c
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")
_FOOTER = struct.Struct("<I")
# A record longer than this is taken as a damaged length field (a fractal episode is a few MB).
MAX_RECORD_BYTES = 1 << 31


class RecordError(Exception):
    """A TFRecord file that cannot be read past some point; the message says where and why."""


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C of `data`."""
    crc = google_crc32c.value(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclass
class Record:
    """One record's payload, or why it was unusable (`error`), and where it started in the file."""

    index: int
    offset: int
    data: bytes | None
    error: str = ""


def read_records(path: str | Path) -> Iterator[Record]:
    """Yields every record of a TFRecord file in order.

    A record whose data fails its CRC is yielded with `error` set and reading goes on (its length was intact).
    A damaged length or a file cut short ends the file: the last record yielded carries that `error`, since
    nothing after an untrustworthy length can be framed.
    """
    with open(path, "rb") as f:
        index = 0
        while True:
            offset = f.tell()
            header = f.read(_HEADER.size)
            if not header:
                return
            if len(header) < _HEADER.size:
                yield Record(index, offset, None, f"truncated record header ({len(header)} of 12 bytes)")
                return
            length, length_crc = _HEADER.unpack(header)
            if masked_crc32c(header[:8]) != length_crc:
                yield Record(index, offset, None, "bad CRC of the record length (the rest of the file is unframed)")
                return
            if length > MAX_RECORD_BYTES:
                yield Record(index, offset, None, f"record length {length} is implausible")
                return
            data = f.read(length)
            footer = f.read(_FOOTER.size)
            if len(data) < length or len(footer) < _FOOTER.size:
                yield Record(index, offset, None, f"truncated record ({len(data)} of {length} data bytes)")
                return
            if masked_crc32c(data) != _FOOTER.unpack(footer)[0]:
                yield Record(index, offset, None, "bad CRC of the record data")
            else:
                yield Record(index, offset, data)
            index += 1


def write_record(f: Any, data: bytes) -> None:
    """Appends one framed record to the binary file `f` (for tests that damage files the real writer made)."""
    header = struct.pack("<Q", len(data))
    f.write(header + struct.pack("<I", masked_crc32c(header)) + data + struct.pack("<I", masked_crc32c(data)))


def _example_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """tf.train.Example's schema (field numbers as in TensorFlow's feature.proto and example.proto)."""
    proto = descriptor_pb2.FileDescriptorProto(name="rt_tf_example.proto", package="rt_tf", syntax="proto3")
    field = descriptor_pb2.FieldDescriptorProto
    repeated, optional = field.LABEL_REPEATED, field.LABEL_OPTIONAL

    def message(name: str, fields: list[tuple[str, int, int, int, str]]) -> descriptor_pb2.DescriptorProto:
        msg = proto.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            added = msg.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                added.type_name = type_name
        return msg

    message("BytesList", [("value", 1, field.TYPE_BYTES, repeated, "")])
    message("FloatList", [("value", 1, field.TYPE_FLOAT, repeated, "")])
    message("Int64List", [("value", 1, field.TYPE_INT64, repeated, "")])
    feature = message(
        "Feature",
        [
            ("bytes_list", 1, field.TYPE_MESSAGE, optional, ".rt_tf.BytesList"),
            ("float_list", 2, field.TYPE_MESSAGE, optional, ".rt_tf.FloatList"),
            ("int64_list", 3, field.TYPE_MESSAGE, optional, ".rt_tf.Int64List"),
        ],
    )
    feature.oneof_decl.add(name="kind")
    for f in feature.field:
        f.oneof_index = 0
    features = message("Features", [("feature", 1, field.TYPE_MESSAGE, repeated, ".rt_tf.Features.FeatureEntry")])
    entry = features.nested_type.add(name="FeatureEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=field.TYPE_STRING, label=optional)
    entry.field.add(name="value", number=2, type=field.TYPE_MESSAGE, label=optional, type_name=".rt_tf.Feature")
    message("Example", [("features", 1, field.TYPE_MESSAGE, optional, ".rt_tf.Features")])
    return proto


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_example_descriptor())
Example = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("rt_tf.Example"))


def parse_example(data: bytes) -> dict[str, np.ndarray | list[bytes]]:
    """A serialized tf.train.Example -> {name: float32 array | int64 array | list of bytes}.

    Raises ValueError when the bytes are not an Example.
    """
    example = Example()
    try:
        example.ParseFromString(data)
    except Exception as err:  # protobuf's DecodeError, and others from its C extension
        raise ValueError(f"not a tf.train.Example: {err}") from None
    out: dict[str, np.ndarray | list[bytes]] = {}
    for name, feature in example.features.feature.items():
        kind = feature.WhichOneof("kind")
        if kind == "float_list":
            out[name] = np.asarray(feature.float_list.value, np.float32)
        elif kind == "int64_list":
            out[name] = np.asarray(feature.int64_list.value, np.int64)
        elif kind == "bytes_list":
            out[name] = list(feature.bytes_list.value)
        else:
            out[name] = np.zeros(0, np.float32)
    return out


def serialize_example(features: dict[str, np.ndarray | list[bytes]]) -> bytes:
    """The inverse of `parse_example` (float arrays -> float_list, integer arrays -> int64_list, lists of bytes
    -> bytes_list), for tests that need a record the real writer would not make."""
    example = Example()
    for name, values in features.items():
        feature = example.features.feature[name]
        if isinstance(values, list):
            feature.bytes_list.value.extend(values)
        elif np.issubdtype(np.asarray(values).dtype, np.floating):
            feature.float_list.value.extend(np.asarray(values, np.float32).tolist())
        else:
            feature.int64_list.value.extend(np.asarray(values, np.int64).tolist())
    return example.SerializeToString()

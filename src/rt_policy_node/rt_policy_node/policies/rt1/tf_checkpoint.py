"""Read a TensorFlow checkpoint into numpy arrays, without TensorFlow or protobuf.

A checkpoint is a TensorBundle: `<prefix>.index`, a LevelDB-format table mapping each tensor key to a
BundleEntryProto (dtype, shape, shard, offset, size, masked crc32c), and `<prefix>.data-NNNNN-of-MMMMM` shards
holding the raw little-endian tensor bytes. Every block and tensor checksum is verified.
"""

from __future__ import annotations

import functools
import re
import struct
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VARIABLE_SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"
OBJECT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_SIZE = 48
_DT_STRING = 7
# TensorFlow's DataType enum -> the numpy dtype with the same bytes; anything else is refused by name.
_DTYPES = {
    1: "<f4", 2: "<f8", 3: "<i4", 4: "u1", 5: "<i2", 6: "i1", 8: "<c8", 9: "<i8",
    10: "?", 17: "<u2", 18: "<c16", 19: "<f2", 22: "<u4", 23: "<u8",
}  # fmt: skip
_UNSUPPORTED_DTYPES = {
    7: "string", 11: "qint8", 12: "quint8", 13: "qint32", 14: "bfloat16",
    15: "qint16", 16: "quint16", 20: "resource", 21: "variant",
}  # fmt: skip
# The first path segment named `_actor_network` and everything before it (`agent/`, `policy/`, ...).
_ACTOR_NETWORK_PREFIX = re.compile(r"^(?:[^/]+/)*?_actor_network/")


class CheckpointError(ValueError):
    """The checkpoint is missing, malformed, corrupt, or uses a feature this reader does not support."""


@dataclass(frozen=True)
class BundleEntry:
    """Where one tensor lives in the data shards (a decoded BundleEntryProto)."""

    dtype: int
    shape: tuple[int, ...]
    shard: int
    offset: int
    size: int
    masked_crc32c: int
    partitioned: bool


@dataclass(frozen=True)
class TrackableNode:
    """One object of the checkpoint's object graph: its named children and, for a variable, its bundle key."""

    children: tuple[tuple[str, int], ...]
    variable_key: str | None


def read_tf_checkpoint(path: str | Path) -> dict[str, np.ndarray]:
    """Every variable of a checkpoint as numpy, keyed by object path (`network/...` for the RT-1 actor network).

    `path` is a checkpoint prefix (`.../rt1_ref`, `.../variables/variables`), a SavedModel's `variables/`
    directory, or a directory holding exactly one checkpoint. Optimizer slots, `save_counter` and the object graph
    are left out; other variables (e.g. `global_step`) keep their own path.
    """
    prefix = resolve_prefix(path)
    num_shards, entries = read_index(prefix)
    with _Shards(prefix, num_shards) as shards:
        keys = _variable_keys(prefix, entries, shards)
        dtypes = {key: _numpy_dtype(key, entries[key]) for key in keys.values()}
        data = {key: shards.read(key, entries[key]) for key in keys.values()}
    _verify_checksums(prefix, data, entries)
    return {
        name: np.frombuffer(data[key], dtypes[key])
        .astype(dtypes[key].newbyteorder("="), copy=False)
        .reshape(entries[key].shape)
        for name, key in keys.items()
    }


def _variable_keys(prefix: Path, entries: dict[str, BundleEntry], shards: _Shards) -> dict[str, str]:
    """Output name -> bundle key for every variable, named through the actor network where the graph allows."""
    aliases = actor_network_aliases(_object_graph(entries, shards))
    keys: dict[str, str] = {}
    for key in entries:
        name = normalize_key(aliases.get(key, key))
        if name is None:
            continue
        if name in keys:
            raise CheckpointError(f"{prefix}: {keys[name]!r} and {key!r} both map to {name!r}")
        keys[name] = key
    if not keys:
        raise CheckpointError(f"{prefix}: no object-based variables (keys ending in {VARIABLE_SUFFIX!r}) found")
    return keys


def resolve_prefix(path: str | Path) -> Path:
    """The checkpoint prefix for a prefix, an `.index` file, a SavedModel `variables/` dir or a one-checkpoint dir."""
    path = Path(path)
    if path.suffix == ".index" and path.is_file():
        return path.with_suffix("")
    if Path(f"{path}.index").is_file():
        return path
    if path.is_dir():
        found = sorted(path.glob("*.index")) or sorted(path.glob("variables/variables.index"))
        if len(found) == 1:
            return found[0].with_suffix("")
        if len(found) > 1:
            names = ", ".join(p.name for p in found)
            raise CheckpointError(f"{path} holds {len(found)} checkpoints ({names}); pass one prefix")
    raise CheckpointError(
        f"no TensorFlow checkpoint at {path}: expected {path}.index (a checkpoint prefix), "
        "a SavedModel variables/ directory, or a directory holding one checkpoint"
    )


def normalize_key(key: str) -> str | None:
    """A bundle key's variable path, with the actor network's prefix as `network/`; None for what is not a weight.

    `agent/_actor_network/_transformer/.../kernel/.ATTRIBUTES/VARIABLE_VALUE` -> `network/_transformer/.../kernel`.
    """
    if not key.endswith(VARIABLE_SUFFIX) or "/.OPTIMIZER_SLOT/" in key:
        return None
    path = key[: -len(VARIABLE_SUFFIX)]
    if path == "save_counter":
        return None
    return _ACTOR_NETWORK_PREFIX.sub("network/", path, count=1)


def read_index(prefix: str | Path) -> tuple[int, dict[str, BundleEntry]]:
    """The number of data shards and every tensor's BundleEntry, from `<prefix>.index`."""
    index_path = Path(f"{prefix}.index")
    try:
        table = index_path.read_bytes()
    except OSError as err:
        raise CheckpointError(f"cannot read {index_path}: {err}") from err
    num_shards, entries = None, {}
    for key, value in _table_entries(table, index_path):
        if key == b"":
            num_shards = _parse_header(value, index_path)
        else:
            name = key.decode()
            entries[name] = _parse_entry(value, name)
    if num_shards is None:
        raise CheckpointError(f"{index_path} has no bundle header: not a TensorFlow checkpoint index")
    return num_shards, entries


def read_object_graph(path: str | Path) -> list[TrackableNode]:
    """A checkpoint's object graph (empty for a name-based TF1 checkpoint, which has none)."""
    prefix = resolve_prefix(path)
    num_shards, entries = read_index(prefix)
    with _Shards(prefix, num_shards) as shards:
        return _object_graph(entries, shards)


def parse_object_graph(data: bytes) -> list[TrackableNode]:
    """Decode a TrackableObjectGraph proto: node 0 is the root; children are listed in TensorFlow's order."""
    nodes = []
    for field, node in _fields(data):
        if field != 1:
            continue
        children, variable_key = [], None
        for node_field, value in _fields(node):
            if node_field == 1:
                ref = dict(_fields(value))
                children.append((ref.get(2, b"").decode(), ref.get(1, 0)))
            elif node_field == 2:
                attribute = dict(_fields(value))
                if attribute.get(1) == b"VARIABLE_VALUE":
                    variable_key = attribute.get(3, b"").decode()
        nodes.append(TrackableNode(tuple(children), variable_key))
    if any(not 0 <= child < len(nodes) for node in nodes for _, child in node.children):
        raise CheckpointError("malformed object graph: a child refers to a node that does not exist")
    return nodes


def object_paths(nodes: list[TrackableNode], start: int = 0) -> dict[int, str]:
    """Each node's path from `start`, breadth first, as TensorFlow names checkpoint keys (shortest, first seen)."""
    paths, queue = {start: ""}, deque([start])
    while queue:
        parent = queue.popleft()
        for name, child in nodes[parent].children:
            if child not in paths:
                escaped = name.replace(".", "..").replace("/", ".S")
                paths[child] = f"{paths[parent]}/{escaped}" if paths[parent] else escaped
                queue.append(child)
    return paths


def actor_network_aliases(nodes: list[TrackableNode]) -> dict[str, str]:
    """Bundle key -> the same variable's key spelled through `_actor_network`, for variables reachable that way.

    TensorFlow keys a variable by its shortest path, so a TF-Agents SavedModel names the network's weights
    `model_variables/<i>`; the object graph still knows their path inside the network.
    """
    if not nodes:
        return {}
    actor = next(
        (child for node in object_paths(nodes) for name, child in nodes[node].children if name == "_actor_network"),
        None,
    )
    if actor is None:
        return {}
    return {
        nodes[node].variable_key: f"_actor_network/{path}{VARIABLE_SUFFIX}"
        for node, path in object_paths(nodes, actor).items()
        if nodes[node].variable_key
    }


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`, as LevelDB and TensorFlow checksum their files."""
    return int(_crc32c_batch([np.frombuffer(data, np.uint8)])[0])


def mask_crc(crc: int | np.ndarray) -> np.ndarray:
    """LevelDB's masked CRC (rotate right 15, add a constant), the form stored in checkpoints; uint32."""
    crc = np.asarray(crc, dtype=np.uint32)
    masked = ((crc >> np.uint32(15)) | (crc << np.uint32(17))).astype(np.uint64) + 0xA282EAD8
    return (masked & 0xFFFFFFFF).astype(np.uint32)


class _Shards:
    """Open data shards; reads one tensor's bytes with a clear error for a missing or truncated file."""

    def __init__(self, prefix: Path, num_shards: int) -> None:
        self.prefix, self.num_shards, self.files = prefix, num_shards, {}

    def __enter__(self) -> _Shards:
        return self

    def __exit__(self, *exc: object) -> None:
        for file in self.files.values():
            file.close()

    def read(self, key: str, entry: BundleEntry) -> bytearray:
        if not 0 <= entry.shard < self.num_shards:
            raise CheckpointError(f"{key}: shard {entry.shard} out of range (the bundle has {self.num_shards})")
        path = Path(f"{self.prefix}.data-{entry.shard:05d}-of-{self.num_shards:05d}")
        if entry.shard not in self.files:
            try:
                self.files[entry.shard] = path.open("rb")
            except OSError as err:
                raise CheckpointError(f"missing data shard {path} for {self.prefix}.index: {err}") from err
        file = self.files[entry.shard]
        data = bytearray(entry.size)
        file.seek(entry.offset)
        if file.readinto(data) != entry.size:
            raise CheckpointError(
                f"{path} is truncated: {key} needs bytes [{entry.offset}, {entry.offset + entry.size}) "
                f"but the file has {path.stat().st_size}"
            )
        return data

    def read_scalar_string(self, key: str, entry: BundleEntry) -> bytes:
        """A scalar DT_STRING tensor: varint length, 4-byte checksum of the lengths, then the bytes."""
        if entry.dtype != _DT_STRING or entry.shape != ():
            raise CheckpointError(f"{key}: expected a scalar string, got dtype {entry.dtype} shape {entry.shape}")
        data = bytes(self.read(key, entry))
        length, pos = _varint(data, 0)
        if pos + 4 + length != len(data):
            raise CheckpointError(f"{key}: malformed string tensor")
        return data[pos + 4 :]


def _object_graph(entries: dict[str, BundleEntry], shards: _Shards) -> list[TrackableNode]:
    if OBJECT_GRAPH_KEY not in entries:
        return []
    return parse_object_graph(shards.read_scalar_string(OBJECT_GRAPH_KEY, entries[OBJECT_GRAPH_KEY]))


def _numpy_dtype(key: str, entry: BundleEntry) -> np.dtype:
    """The numpy dtype of an entry, after checking that its bytes can be read as a plain array of it."""
    if entry.partitioned:
        raise CheckpointError(f"{key} is a partitioned (sliced) variable, which this reader does not support")
    if entry.dtype not in _DTYPES:
        name = _UNSUPPORTED_DTYPES.get(entry.dtype, f"enum {entry.dtype}")
        raise CheckpointError(f"{key}: dtype {name} is not supported (numpy has no exact equivalent)")
    dtype = np.dtype(_DTYPES[entry.dtype])
    if entry.size != dtype.itemsize * int(np.prod(entry.shape)):
        raise CheckpointError(f"{key}: {entry.size} bytes do not hold {dtype} of shape {entry.shape}")
    return dtype


def _verify_checksums(prefix: Path, data: dict[str, bytearray], entries: dict[str, BundleEntry]) -> None:
    keys = list(data)
    actual = mask_crc(_crc32c_batch([np.frombuffer(data[key], np.uint8) for key in keys]))
    bad = [key for key, crc in zip(keys, actual, strict=True) if int(crc) != entries[key].masked_crc32c]
    if bad:
        raise CheckpointError(f"{prefix}: checksum mismatch in {len(bad)} tensor(s), e.g. {bad[:3]}: corrupt data")


def _parse_header(value: bytes, path: Path) -> int:
    header = dict(_fields(value))
    if header.get(2, 0) != 0:
        raise CheckpointError(f"{path} was written on a big-endian machine, which this reader does not support")
    return header.get(1, 0)


def _parse_entry(value: bytes, key: str) -> BundleEntry:
    fields = dict(dtype=0, shape=(), shard=0, offset=0, size=0, masked_crc32c=0, partitioned=False)
    for field, item in _fields(value):
        if field == 1:
            fields["dtype"] = item
        elif field == 2:
            dims = [dict(_fields(dim)).get(1, 0) for number, dim in _fields(item) if number == 2]
            if any(d >= 1 << 63 for d in dims):
                raise CheckpointError(f"{key}: unknown dimension in shape")
            fields["shape"] = tuple(dims)
        elif field in (3, 4, 5):
            fields[{3: "shard", 4: "offset", 5: "size"}[field]] = item
        elif field == 6:
            fields["masked_crc32c"] = struct.unpack("<I", item)[0]
        elif field == 7:
            fields["partitioned"] = True
    return BundleEntry(**fields)


def _table_entries(table: bytes, path: Path) -> Iterator[tuple[bytes, bytes]]:
    """All (key, value) pairs of a LevelDB table: footer -> index block -> data blocks."""
    if len(table) < _FOOTER_SIZE or struct.unpack("<Q", table[-8:])[0] != _TABLE_MAGIC:
        raise CheckpointError(f"{path} is not a TensorFlow checkpoint index (bad table footer)")
    footer = table[-_FOOTER_SIZE:]
    _, pos = _varint(footer, _varint(footer, 0)[1])  # skip the metaindex handle
    index_offset, pos = _varint(footer, pos)
    index_size, _ = _varint(footer, pos)
    for _, handle in _block_entries(_read_block(table, index_offset, index_size, path), path):
        offset, pos = _varint(handle, 0)
        yield from _block_entries(_read_block(table, offset, _varint(handle, pos)[0], path), path)


def _read_block(table: bytes, offset: int, size: int, path: Path) -> bytes:
    """A block's contents after checking its trailer: compression type (must be none) and masked crc32c."""
    if offset + size + 5 > len(table) - _FOOTER_SIZE:
        raise CheckpointError(f"{path} is truncated or corrupt (block at {offset} runs past the end)")
    block, kind = table[offset : offset + size], table[offset + size]
    (stored,) = struct.unpack("<I", table[offset + size + 1 : offset + size + 5])
    if int(mask_crc(crc32c(table[offset : offset + size + 1]))) != stored:
        raise CheckpointError(f"{path} is corrupt (checksum mismatch in the block at {offset})")
    if kind != 0:
        raise CheckpointError(f"{path}: compressed index blocks (type {kind}) are not supported")
    return block


def _block_entries(block: bytes, path: Path) -> Iterator[tuple[bytes, bytes]]:
    """A block's prefix-compressed entries: varints (shared, unshared, value length), key suffix, value."""
    (num_restarts,) = struct.unpack("<I", block[-4:])
    end, pos, key = len(block) - 4 * (num_restarts + 1), 0, b""
    while pos < end:
        shared, pos = _varint(block, pos)
        unshared, pos = _varint(block, pos)
        value_size, pos = _varint(block, pos)
        key = key[:shared] + block[pos : pos + unshared]
        pos += unshared
        yield key, block[pos : pos + value_size]
        pos += value_size
    if pos != end:
        raise CheckpointError(f"{path} is corrupt (a block's entries overrun its restart array)")


def _fields(message: bytes) -> Iterator[tuple[int, int | bytes]]:
    """A protobuf message's (field number, value): ints for varints, bytes for fixed and length-delimited fields."""
    pos = 0
    while pos < len(message):
        tag, pos = _varint(message, pos)
        field, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(message, pos)
        elif wire in (1, 5):
            width = 8 if wire == 1 else 4
            value, pos = message[pos : pos + width], pos + width
        elif wire == 2:
            length, pos = _varint(message, pos)
            value, pos = message[pos : pos + length], pos + length
        else:
            raise CheckpointError(f"unsupported protobuf wire type {wire}")
        if pos > len(message):
            raise CheckpointError("truncated protobuf message")
        yield field, value


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise CheckpointError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, pos


# CRC-32C in numpy. A CRC is linear over GF(2), so each buffer is cut into fixed-length lanes that are stepped
# together, 4 bytes per numpy op across every lane of every buffer, then each buffer's lane CRCs are folded.
def _byte_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1)
    return table


_CRC_TABLE = _byte_table()


def _feed_zeros(state: np.ndarray, count: int) -> np.ndarray:
    """The CRC register after `count` zero bytes, for each starting state."""
    for _ in range(count):
        state = _CRC_TABLE[state & 0xFF] ^ (state >> 8)
    return state


@functools.cache
def _word_tables() -> tuple[np.ndarray, np.ndarray]:
    """Feeding a 4-byte word: state' = low[(state ^ word) & 0xFFFF] ^ high[(state ^ word) >> 16]."""
    halves = np.arange(1 << 16, dtype=np.uint32)
    return _feed_zeros(halves, 4), _feed_zeros(halves << 16, 4)


@functools.cache
def _skip_tables(lane: int) -> np.ndarray:
    """Four byte-indexed tables that advance a CRC state over `lane` zero bytes (to append the next lane's CRC)."""
    basis = _feed_zeros(np.uint32(1) << np.arange(32, dtype=np.uint32), lane).reshape(4, 8)
    bits = ((np.arange(256)[:, None] >> np.arange(8)) & 1).astype(bool)
    return np.stack([np.bitwise_xor.reduce(np.where(bits, row, np.uint32(0)), axis=1) for row in basis])


def _crc32c_batch(buffers: list[np.ndarray]) -> np.ndarray:
    """The CRC-32C of each uint8 buffer."""
    result = np.zeros(len(buffers), np.uint32)
    long = [i for i, buf in enumerate(buffers) if len(buf) >= 4]
    for i, buf in enumerate(buffers):
        if len(buf) < 4:
            state = 0xFFFFFFFF
            for byte in buf.tolist():
                state = int(_CRC_TABLE[(state ^ byte) & 0xFF]) ^ (state >> 8)
            result[i] = state ^ 0xFFFFFFFF
    if not long:
        return result
    lane = 1 << int(np.clip(np.ceil(np.log2(np.sqrt(sum(len(buffers[i]) for i in long)))), 8, 14))
    counts = [-(-len(buffers[i]) // lane) for i in long]
    # Lanes are right-aligned (leading zeros leave a zero CRC state at zero), and the initial state 0xFFFFFFFF is
    # applied by inverting the first four bytes, which has the same effect on a linear CRC.
    words = np.zeros((lane // 4, sum(counts)), np.uint32)
    column = 0
    for i, count in zip(long, counts, strict=True):
        padded = np.zeros(count * lane, np.uint8)
        start = count * lane - len(buffers[i])
        padded[start:] = buffers[i]
        padded[start : start + 4] ^= 0xFF
        words[:, column : column + count] = padded.view("<u4").reshape(count, lane // 4).T
        column += count
    low, high = _word_tables()
    state, mixed = np.zeros(words.shape[1], np.uint32), np.empty(words.shape[1], np.uint32)
    for row in words:
        np.bitwise_xor(state, row, out=mixed)
        state = low[mixed & 0xFFFF] ^ high[mixed >> 16]
    # Fold each buffer's lanes in order; buffers with fewer lanes start with zero lanes, which fold to zero.
    width = max(counts)
    grid = np.zeros((len(long), width), np.uint32)
    grid[np.repeat(np.arange(len(long)), counts), np.concatenate([np.arange(width - c, width) for c in counts])] = state
    skip, folded = _skip_tables(lane), np.zeros(len(long), np.uint32)
    for lane_crc in grid.T:
        folded = (
            skip[0][folded & 0xFF]
            ^ skip[1][(folded >> 8) & 0xFF]
            ^ skip[2][(folded >> 16) & 0xFF]
            ^ skip[3][folded >> 24]
            ^ lane_crc
        )
    result[long] = ~folded
    return result

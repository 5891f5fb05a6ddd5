"""TensorFlow checkpoint reader: bit-exact against the RT-1 reference weights, key naming, and clear errors."""

import dataclasses
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from rt_policy_node.policies.rt1.tf_checkpoint import (
    OBJECT_GRAPH_KEY,
    VARIABLE_SUFFIX,
    CheckpointError,
    TrackableNode,
    actor_network_aliases,
    crc32c,
    mask_crc,
    normalize_key,
    object_paths,
    read_object_graph,
    read_tf_checkpoint,
    resolve_prefix,
)

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference" / "rt1_tf"
PREFIX = REFERENCE / "tf_checkpoint" / "rt1_ref"
DATA = Path(f"{PREFIX}.data-00000-of-00001")
needs_reference = pytest.mark.skipif(
    not PREFIX.with_suffix(".index").is_file(), reason=f"RT-1 reference data not found at {REFERENCE}"
)


@pytest.fixture(scope="module")
def variables() -> list[dict]:
    return json.loads((REFERENCE / "variables.json").read_text())


@pytest.fixture(scope="module")
def weights() -> dict[str, np.ndarray]:
    return read_tf_checkpoint(PREFIX)


@pytest.fixture(scope="module")
def graph() -> list[TrackableNode]:
    return read_object_graph(PREFIX)


@needs_reference
def test_every_variable_is_bit_exact(weights, variables):
    reference = np.load(REFERENCE / "weights.npz")
    assert set(weights) == {v["checkpoint_key"] for v in variables}
    for v in variables:
        ours, theirs = weights[v["checkpoint_key"]], reference[v["name"]]
        assert ours.dtype == theirs.dtype and ours.shape == theirs.shape == tuple(v["shape"]), v["checkpoint_key"]
        assert ours.tobytes() == theirs.tobytes(), v["checkpoint_key"]


@needs_reference
def test_dtypes(weights, variables):
    (count,) = [v["checkpoint_key"] for v in variables if v["dtype"] == "int64"]
    assert count.endswith("/count") and weights[count].dtype == np.int64 and weights[count].shape == ()
    assert all(a.dtype == np.float32 for key, a in weights.items() if key != count)
    assert all(a.flags.writeable for a in weights.values())


@needs_reference
def test_released_names_normalise_to_reference_keys(variables):
    for v in variables:
        assert normalize_key(v["released_rt1main_key"] + VARIABLE_SUFFIX) == v["checkpoint_key"]
    rows = (REFERENCE / "released_rt1main_variables.tsv").read_text().splitlines()
    released = [row.split("\t")[0] for row in rows if not row.startswith("#")]
    assert len(released) == 734
    names = {normalize_key(name + VARIABLE_SUFFIX) for name in released} - {None}
    assert len(names) == 733 and "global_step" in names
    assert all(name.startswith("network/") for name in names - {"global_step"})


def test_normalize_key_drops_what_is_not_a_weight():
    kernel = "agent/_actor_network/_transformer/_layers/0/ff/kernel"
    assert normalize_key(kernel + VARIABLE_SUFFIX) == "network/_transformer/_layers/0/ff/kernel"
    assert normalize_key(f"{kernel}/.OPTIMIZER_SLOT/agent/_optimizer/m{VARIABLE_SUFFIX}") is None
    assert normalize_key("save_counter" + VARIABLE_SUFFIX) is None
    assert normalize_key(OBJECT_GRAPH_KEY) is None
    assert normalize_key("network/_token_emb/bias" + VARIABLE_SUFFIX) == "network/_token_emb/bias"
    assert normalize_key("policy/_wrapped_policy/_actor_network/_token_emb/bias" + VARIABLE_SUFFIX) == (
        "network/_token_emb/bias"
    )


@needs_reference
def test_object_graph_paths_are_the_checkpoint_keys(graph):
    variables = {i: node.variable_key for i, node in enumerate(graph) if node.variable_key}
    paths = object_paths(graph)
    assert len(variables) == 648
    assert all(paths[i] + VARIABLE_SUFFIX == key for i, key in variables.items())
    assert actor_network_aliases(graph) == {}


@needs_reference
def test_savedmodel_list_names_resolve_through_the_actor_network(graph):
    """A TF-Agents SavedModel reaches each weight first as `model_variables/<i>`; the graph recovers its real path."""
    variables = [i for i, node in enumerate(graph) if node.variable_key]
    listing = TrackableNode(tuple((str(j), i) for j, i in enumerate(variables)), None)
    root = TrackableNode((("_actor_network", 1), ("model_variables", len(graph))), None)
    renamed = {i: f"model_variables/{j}{VARIABLE_SUFFIX}" for j, i in enumerate(variables)}
    saved = [root, *graph[1:], listing]
    saved = [dataclasses.replace(node, variable_key=renamed.get(i)) for i, node in enumerate(saved)]
    aliases = actor_network_aliases(saved)
    assert all(normalize_key(aliases[renamed[i]]) == normalize_key(graph[i].variable_key) for i in variables)


@needs_reference
def test_resolves_prefix_index_file_and_directories(tmp_path):
    assert resolve_prefix(PREFIX) == PREFIX
    assert resolve_prefix(f"{PREFIX}.index") == PREFIX
    assert resolve_prefix(PREFIX.parent) == PREFIX
    saved_model = tmp_path / "saved_model"
    (saved_model / "variables").mkdir(parents=True)
    (saved_model / "variables" / "variables.index").symlink_to(f"{PREFIX}.index")
    assert resolve_prefix(saved_model) == saved_model / "variables" / "variables"
    assert resolve_prefix(saved_model / "variables") == saved_model / "variables" / "variables"
    (tmp_path / "a.index").touch()
    (tmp_path / "b.index").touch()
    with pytest.raises(CheckpointError, match="holds 2 checkpoints"):
        resolve_prefix(tmp_path)
    with pytest.raises(CheckpointError, match="no TensorFlow checkpoint"):
        read_tf_checkpoint(tmp_path / "missing")


@needs_reference
def test_truncated_or_missing_data_file(tmp_path):
    shutil.copy(f"{PREFIX}.index", tmp_path / "ckpt.index")
    with pytest.raises(CheckpointError, match="missing data shard"):
        read_tf_checkpoint(tmp_path / "ckpt")
    with DATA.open("rb") as src:
        (tmp_path / "ckpt.data-00000-of-00001").write_bytes(src.read(1 << 20))
    with pytest.raises(CheckpointError, match="truncated"):
        read_tf_checkpoint(tmp_path / "ckpt")


@needs_reference
def test_corrupt_index_block(tmp_path):
    index = bytearray(Path(f"{PREFIX}.index").read_bytes())
    index[100] ^= 0x01
    (tmp_path / "ckpt.index").write_bytes(index)
    (tmp_path / "ckpt.data-00000-of-00001").symlink_to(DATA)
    with pytest.raises(CheckpointError, match="corrupt"):
        read_tf_checkpoint(tmp_path / "ckpt")


def test_crc32c_matches_a_bitwise_implementation():
    def bitwise(data: bytes) -> int:
        crc = 0xFFFFFFFF
        for byte in data:
            crc ^= byte
            for _ in range(8):
                crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
        return crc ^ 0xFFFFFFFF

    assert crc32c(b"123456789") == 0xE3069283  # the standard CRC-32C check value
    rng = np.random.default_rng(0)
    for size in (0, 1, 3, 4, 5, 255, 256, 257, 1023, 4096, 20001):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert crc32c(data) == bitwise(data), size


# A minimal TensorBundle writer, for the cases the reference checkpoint does not contain.
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def _field(number: int, value: int | bytes) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    return _varint(number << 3 | 2) + _varint(len(value)) + value


def _object_graph(nodes: list[tuple[list[tuple[str, int]], str | None]]) -> bytes:
    def node(children, key):
        refs = b"".join(_field(1, _field(1, i) + _field(2, name.encode())) for name, i in children)
        return refs + (_field(2, _field(1, b"VARIABLE_VALUE") + _field(3, key.encode())) if key else b"")

    return b"".join(_field(1, node(children, key)) for children, key in nodes)


def write_bundle(prefix: Path, tensors: dict[str, tuple[int, tuple, bytes]], graph: bytes = b"", kind: int = 0):
    """Write `<prefix>.index` and one data shard; tensors map key -> (TF dtype enum, shape, raw bytes)."""
    if graph:
        tensors = {**tensors, OBJECT_GRAPH_KEY: (7, (), _varint(len(graph)) + bytes(4) + graph)}
    data, rows = b"", [(b"", _field(1, 1))]
    for key in sorted(tensors):
        dtype, shape, raw = tensors[key]
        shape_proto = b"".join(_field(2, _field(1, d)) for d in shape)
        crc = _varint(6 << 3 | 5) + struct.pack("<I", int(mask_crc(crc32c(raw))))
        entry = _field(1, dtype) + _field(2, shape_proto) + _field(4, len(data)) + _field(5, len(raw)) + crc
        rows.append((key.encode(), entry))
        data += raw
    table = bytearray()

    def add_block(entries: list[tuple[bytes, bytes]]) -> bytes:
        """Append a block (no key sharing, one restart point) and its trailer; return its handle."""
        contents = b"".join(_varint(0) + _varint(len(k)) + _varint(len(v)) + k + v for k, v in entries)
        contents += struct.pack("<II", 0, 1)
        handle = _varint(len(table)) + _varint(len(contents))
        trailer = bytes([kind])
        table.extend(contents + trailer + struct.pack("<I", int(mask_crc(crc32c(contents + trailer)))))
        return handle

    data_handle = add_block(rows)
    footer = add_block([]) + add_block([(rows[-1][0], data_handle)])
    table.extend(footer + bytes(40 - len(footer)) + struct.pack("<Q", 0xDB4775248B80FB57))
    Path(f"{prefix}.index").write_bytes(table)
    Path(f"{prefix}.data-00000-of-00001").write_bytes(data)


KERNEL = np.arange(6, dtype=np.float32).reshape(2, 3)


def test_savedmodel_bundle_is_keyed_through_the_actor_network(tmp_path):
    graph = _object_graph(
        [
            ([("_actor_network", 1), ("model_variables", 2), ("train_step", 5)], None),
            ([("_layer", 3)], None),
            ([("0", 4)], None),
            ([("kernel", 4)], None),
            ([], f"model_variables/0{VARIABLE_SUFFIX}"),
            ([], f"train_step{VARIABLE_SUFFIX}"),
        ]
    )
    tensors = {
        f"model_variables/0{VARIABLE_SUFFIX}": (1, (2, 3), KERNEL.tobytes()),
        f"train_step{VARIABLE_SUFFIX}": (9, (), np.int64(7).tobytes()),
    }
    write_bundle(tmp_path / "variables", tensors, graph)
    weights = read_tf_checkpoint(tmp_path)
    assert set(weights) == {"network/_layer/kernel", "train_step"}
    np.testing.assert_array_equal(weights["network/_layer/kernel"], KERNEL)
    assert weights["train_step"] == 7


def test_corrupt_tensor_fails_its_checksum(tmp_path):
    write_bundle(tmp_path / "ckpt", {f"network/kernel{VARIABLE_SUFFIX}": (1, (2, 3), KERNEL.tobytes())})
    data = bytearray((tmp_path / "ckpt.data-00000-of-00001").read_bytes())
    data[5] ^= 0x10
    (tmp_path / "ckpt.data-00000-of-00001").write_bytes(data)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        read_tf_checkpoint(tmp_path / "ckpt")


@pytest.mark.parametrize(
    ("tensors", "kind", "message"),
    [
        ({f"network/kernel{VARIABLE_SUFFIX}": (14, (3,), bytes(6))}, 0, "bfloat16 is not supported"),
        ({f"network/kernel{VARIABLE_SUFFIX}": (1, (4,), bytes(12))}, 0, "do not hold"),
        ({"transformer_network/dense/kernel": (1, (3,), bytes(12))}, 0, "no object-based variables"),
        ({f"network/kernel{VARIABLE_SUFFIX}": (1, (3,), bytes(12))}, 1, "compressed index blocks"),
    ],
    ids=["unsupported-dtype", "size-mismatch", "tf1-names", "snappy-index"],
)
def test_unsupported_checkpoints_raise_clear_errors(tmp_path, tensors, kind, message):
    write_bundle(tmp_path / "ckpt", tensors, kind=kind)
    with pytest.raises(CheckpointError, match=message):
        read_tf_checkpoint(tmp_path / "ckpt")

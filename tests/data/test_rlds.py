"""rt-dataset import-rlds on RLDS shards written by the real tensorflow-datasets writer (scripts/make_rlds_fixture.py),
checked against what TensorFlow itself read back from them (expected.npz), without TensorFlow."""

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
from dataset_helpers import FRACTAL, RLDS_FIXTURES

from rt_policy_node.data.cli import main as rt_dataset
from rt_policy_node.data.cli import resize_frame
from rt_policy_node.data.dataset import StoredDataset
from rt_policy_node.data.rlds import (
    NOT_ONE_HOT,
    RLDS_TEXT_ENCODER,
    RldsError,
    RldsSource,
    decode_image,
    import_rlds,
)
from rt_policy_node.data.tfrecord import parse_example, read_records, serialize_example, write_record
from rt_policy_node.data.windows import WindowDataset
from rt_policy_node.policies.action_tokenizer import ActionTokenizer

SHARD = FRACTAL / "fractal20220817_data-train.tfrecord-00000-of-00001"
TOY = RLDS_FIXTURES / "toy_eef_delta_rlds" / "1.0.0"
SIZE = 48


def resize(frame: np.ndarray) -> np.ndarray:
    return resize_frame(frame, SIZE)


@pytest.fixture(scope="module")
def expected() -> dict[str, np.ndarray]:
    with np.load(FRACTAL / "expected.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    out = tmp_path_factory.mktemp("fractal")
    index = import_rlds([FRACTAL], out, SIZE, resize, progress=False)
    return out, index


def copy_fixture(tmp_path: Path) -> Path:
    """A writable copy of the fractal fixture folder, to damage."""
    target = tmp_path / "fractal20220817_data" / "0.1.0"
    shutil.copytree(FRACTAL, target)
    return target


def test_records_frame_and_parse_as_tensorflow_wrote_them(expected):
    records = list(read_records(SHARD))
    assert [r.error for r in records] == ["", "", ""]
    lengths = [len(parse_example(r.data)["steps/is_first"]) for r in records]
    assert lengths == expected["episode_length"].tolist()


def test_frames_decode_exactly_as_tensorflow_decodes_them(expected):
    """simplejpeg with the fast integer IDCT gives TFDS's pixels bit for bit (Pillow: up to 17 levels off)."""
    spec = RldsSource.open(FRACTAL).specs["steps/observation/image"]
    hashes = []
    for record in read_records(SHARD):
        for jpeg in parse_example(record.data)["steps/observation/image"]:
            hashes.append(hashlib.sha256(decode_image(jpeg, spec).tobytes()).hexdigest())
    assert hashes == expected["frame_sha256"].tolist()


def test_every_step_with_a_mode_becomes_a_training_step(imported, expected):
    out, index = imported
    data = StoredDataset(out)
    one_hot = expected["action/terminate_episode"]
    keep = one_hot.sum(axis=1) == 1
    assert len(data) == keep.sum() == 15
    # fractal's steps with an all-zero terminate_episode have no mode: dropped and counted, never guessed.
    assert sum(e.dropped_steps.get(NOT_ONE_HOT, 0) for e in index.episodes) == (~keep).sum() == 1
    assert [e.length + sum(e.dropped_steps.values()) for e in index.episodes] == expected["episode_length"].tolist()
    actions = np.load(out / "actions.npy")
    tokenizer = ActionTokenizer(rounding="floor")
    rlds = {
        "mode": one_hot.argmax(axis=1),
        "world_vector": expected["action/world_vector"],
        "rotation_delta": expected["action/rotation_delta"],
        "gripper_closedness": expected["action/gripper_closedness_action"],
        "base_rotation": expected["action/base_displacement_vertical_rotation"],
        "base_displacement": expected["action/base_displacement_vector"],
    }
    for name, values in rlds.items():
        stored = actions[:, tokenizer.slices[name]]
        np.testing.assert_array_equal(stored, np.asarray(values, np.float32).reshape(len(one_hot), -1)[keep])
    # The released RT-1 label rule (floor), values past the bounds clipped in the tokens but kept in the actions.
    np.testing.assert_array_equal(
        data.tokens, tokenizer.encode({k: np.asarray(v, np.float64)[keep] for k, v in rlds.items()})
    )
    assert np.abs(actions[:, tokenizer.slices["world_vector"]]).max() > 1.0
    assert set(data.tokens[:, 0].tolist()) == {0, 1, 2}  # terminate, arm and base all occur
    assert index.rounding == "floor" and index.skipped == []


def test_instructions_and_their_embeddings_are_kept_as_given(imported, expected):
    out, index = imported
    data = StoredDataset(out)
    assert index.text_encoder == RLDS_TEXT_ENCODER == "use-large-v5"
    keep = expected["action/terminate_episode"].sum(axis=1) == 1
    texts = [t.decode() for t in expected["natural_language_instruction"][keep]]
    step_instruction = np.repeat([e.instruction_id for e in index.episodes], [e.length for e in index.episodes])
    assert [index.instructions[i] for i in step_instruction] == texts
    np.testing.assert_array_equal(data.embeddings[step_instruction], expected["natural_language_embedding"][keep])


def test_frames_are_the_decoded_frames_resized_like_a_build(imported):
    out, index = imported
    data = StoredDataset(out)
    spec = RldsSource.open(FRACTAL).specs["steps/observation/image"]
    frames = []
    for record in read_records(SHARD):
        example = parse_example(record.data)
        keep = example["steps/action/terminate_episode"].reshape(-1, 3).sum(axis=1) == 1
        images = example["steps/observation/image"]
        frames += [resize(decode_image(j, spec)) for j, k in zip(images, keep, strict=True) if k]
    np.testing.assert_array_equal(data.frames, np.stack(frames))
    # Steps are stamped at RT-1's 3 Hz by their index in the RLDS episode; a window loader reads the dataset.
    first = index.episodes[0]
    assert data.stamps[first.start + 1, 0] - data.stamps[first.start, 0] == round(1e9 / 3)
    assert WindowDataset(data, 6)[len(data) - 1]["images"].shape == (6, SIZE, SIZE, 3)


def test_episode_metadata_is_kept(imported):
    _, index = imported
    extra = index.episodes[0].extra
    assert extra["rlds_dataset"] == "fractal20220817_data/0.1.0"
    assert isinstance(extra["aspects/success"], bool) and isinstance(extra["attributes/env_name"], str)
    assert index.episodes[0].source == f"{SHARD}#0"


def test_another_action_space_is_refused_with_the_reason(tmp_path, capsys):
    with pytest.raises(RldsError, match=r"toy_eef_delta_rlds's actions are not in RT-1's action space"):
        import_rlds([TOY], tmp_path / "out", SIZE, resize, progress=False)
    assert rt_dataset(["import-rlds", str(RLDS_FIXTURES), "--out", str(tmp_path / "out"), "--image-size", "48"]) == 1
    error = capsys.readouterr().err
    assert str(TOY) in error and "steps/action: tensor float32 [7]" in error
    assert not (tmp_path / "out" / "index.json").exists()


def test_a_shard_without_features_json_is_refused(tmp_path):
    shard = tmp_path / SHARD.name
    shutil.copy(SHARD, shard)
    with pytest.raises(RldsError, match=r"no features\.json beside it"):
        import_rlds([shard], tmp_path / "out", SIZE, resize, progress=False)


def _rewrite(shard: Path, change) -> None:
    """Re-frames every record of `shard` after `change(index, example)` edits the parsed Example."""
    records = [parse_example(r.data) for r in read_records(shard)]
    with open(shard, "wb") as f:
        for i, example in enumerate(records):
            change(i, example)
            write_record(f, serialize_example(example))


def test_corrupt_records_are_skipped_with_reason_and_count(tmp_path, capsys):
    folder = copy_fixture(tmp_path)
    shard = folder / SHARD.name

    def damage(i, example):
        if i == 0:
            del example["steps/observation/natural_language_embedding"]
        if i == 1:
            example["steps/observation/image"][2] = b"\xff\xd8 not a jpeg"

    _rewrite(shard, damage)
    records = list(read_records(shard))
    raw = bytearray(shard.read_bytes())
    raw[records[2].offset + 100] ^= 0xFF  # inside the last record's data
    shard.write_bytes(bytes(raw))
    second = folder / "fractal20220817_data-train.tfrecord-00001-of-00002"
    shutil.copy(SHARD, second)
    second.write_bytes(second.read_bytes()[:-1000])  # the last record cut off

    out = tmp_path / "out"
    assert rt_dataset(["import-rlds", str(folder), "--out", str(out), "--image-size", "48"]) == 0
    printed = capsys.readouterr().out
    index = StoredDataset(out).index
    reasons = {s.source: s.reason for s in index.skipped}
    assert reasons == {
        f"{shard}#0": "missing feature steps/observation/natural_language_embedding",
        f"{shard}#1": reasons[f"{shard}#1"],
        f"{shard}#2": "bad CRC of the record data",
        f"{second}#2": reasons[f"{second}#2"],
    }
    assert reasons[f"{shard}#1"].startswith("steps/observation/image of step 2 cannot be decoded")
    assert reasons[f"{second}#2"].startswith("truncated record")
    assert [e.source for e in index.episodes] == [f"{second}#0", f"{second}#1"]
    assert "skipped 4 records:" in printed and "1  bad CRC of the record data" in printed


def test_a_damaged_length_ends_the_shard_and_no_usable_record_is_an_error(tmp_path, capsys):
    folder = copy_fixture(tmp_path)
    shard = folder / SHARD.name
    raw = bytearray(shard.read_bytes())
    raw[3] ^= 0x01  # the first record's length
    shard.write_bytes(bytes(raw))
    assert [r.error for r in read_records(shard)] == ["bad CRC of the record length (the rest of the file is unframed)"]
    assert rt_dataset(["import-rlds", str(shard), "--out", str(tmp_path / "out"), "--image-size", "48"]) == 1
    assert "no usable episode" in capsys.readouterr().err


def test_max_episodes_and_frame_size_options(tmp_path):
    out = tmp_path / "out"
    assert rt_dataset(["import-rlds", str(SHARD), "--out", str(out), "--preset", "rt1_sim", "--max-episodes", "2"]) == 0
    index = StoredDataset(out).index
    assert len(index.episodes) == 2 and index.image_size == (96, 96)
    # rt1_sim rounds its labels; a converted RT-1 (floor) would be given with --model-config.
    assert index.rounding == "round"

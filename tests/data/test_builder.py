"""rt-dataset build: one step per RTAction, the newest earlier frame, labels, the index, bad episodes."""

import shutil

import numpy as np
import pytest
from dataset_helpers import FRAME, CountingEncoder, identity_frame

from rt_policy_node.data import dataset as layout
from rt_policy_node.data.bag_io import EpisodeInfo, EpisodeWriter, update_episode_extra
from rt_policy_node.data.bag_io import read_episode as read_episode_info
from rt_policy_node.data.bag_io import write_episode as write_episode_info
from rt_policy_node.data.builder import build_dataset
from rt_policy_node.data.cli import main as rt_dataset
from rt_policy_node.data.dataset import DatasetIndex, StoredDataset
from rt_policy_node.data.synthetic import COLOURS, FRAME_PERIOD_NS, write_synthetic_episode
from rt_policy_node.policies.action_tokenizer import ActionTokenizer


def test_every_action_becomes_one_step_with_its_frame(built, good_episodes):
    out, index, _ = built
    data = StoredDataset(out)
    assert [e.length for e in index.episodes] == [7, 5, 9]
    assert [e.start for e in index.episodes] == [0, 7, 12]
    assert len(data) == 21 and data.frames.shape == (21, FRAME, FRAME, 3) and data.frames.dtype == np.uint8
    assert isinstance(data.frames, np.memmap)
    assert index.skipped == []
    assert all(e.outcome == "terminated" and e.dropped_steps == {} for e in index.episodes)
    stamps = np.asarray(data.stamps)
    # The observation is never later than the action, and is the frame the action names.
    assert (stamps[:, 1] <= stamps[:, 0]).all()
    frame_index = (stamps[:, 1] - stamps[:, 1].min()) // FRAME_PERIOD_NS
    for episode in index.episodes:
        steps = slice(episode.start, episode.start + episode.length)
        first = stamps[steps, 1].min()
        np.testing.assert_array_equal(data.frames[steps, 0, 0, 0], (stamps[steps, 1] - first) // FRAME_PERIOD_NS)
        assert np.all(np.diff(stamps[steps, 0]) > 0)
    assert frame_index.min() == 0


def test_bgr_frames_are_stored_as_rgb(built):
    out, index, _ = built
    data = StoredDataset(out)
    blue = index.episodes[1]
    frame = np.asarray(data.frames[blue.start])
    square = frame[(frame != 120).any(-1)]
    colours = {tuple(int(c) for c in p) for p in square[1:]}
    assert COLOURS["blue"] in colours


def test_labels_come_from_the_source_tokens_or_the_shared_tokenizer(built):
    out, index, _ = built
    data = StoredDataset(out)
    actions = np.load(out / layout.ACTIONS_FILE)
    floor, rounded = ActionTokenizer(rounding="floor"), ActionTokenizer(rounding="round")

    def encode(tokenizer, rows):
        return tokenizer.encode({d.name: rows[:, tokenizer.slices[d.name]] for d in tokenizer.spec})

    for episode, tokenizer in zip(index.episodes, (floor, floor, rounded), strict=True):
        steps = slice(episode.start, episode.start + episode.length)
        np.testing.assert_array_equal(data.tokens[steps], encode(tokenizer, actions[steps]))
    tokenised = index.episodes[2]
    steps = slice(tokenised.start, tokenised.start + tokenised.length)
    assert (encode(floor, actions[steps]) != data.tokens[steps]).any()
    assert data.tokens[:, 0].tolist().count(0) == 3  # each episode's last action terminates


def test_instructions_are_embedded_once_each(built):
    out, index, encoder = built
    assert index.instructions == ["move to the red square", "move to the blue square"]
    assert sorted(encoder.calls) == sorted(index.instructions)
    assert [e.instruction_id for e in index.episodes] == [0, 1, 0]
    embeddings = np.load(out / layout.EMBEDDINGS_FILE)
    assert embeddings.shape == (2, 512) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-3)
    assert index.text_encoder == "counting-use"


def test_index_holds_per_dimension_statistics_and_a_histogram_plot(built):
    out, index, _ = built
    assert (out / layout.HISTOGRAM_FILE).stat().st_size > 10_000
    assert index.action_stats["mode"]["class_counts"] == [3, 18, 0]
    gripper = index.action_stats["gripper_closedness"]
    assert gripper["min"] == -1.0 and gripper["max"] == 1.0 and gripper["clipped_fraction"] == 1.0
    assert index.action_stats["world_vector.z"]["std"] == 0.0
    assert DatasetIndex.load(out) == index


def _write(path, typestore, instruction="go", frames=(), actions=(), sidecar_instruction=None, tokens=()):
    """A hand-made episode: frames and actions at the given stamps (ms)."""
    types = typestore.types
    info = EpisodeInfo(path.name, 0, instruction if sidecar_instruction is None else sidecar_instruction, "sim", 0.0)
    writer = EpisodeWriter(path, typestore, info)
    Time, Header = types["builtin_interfaces/msg/Time"], types["std_msgs/msg/Header"]

    def header(ms):
        return Header(stamp=Time(sec=ms // 1000, nanosec=(ms % 1000) * 1_000_000), frame_id="")

    def put(topic, ms, msg):
        writer.write(topic, msg.__msgtype__, ms * 1_000_000, typestore.serialize_cdr(msg, msg.__msgtype__))

    Image, RTAction = types["sensor_msgs/msg/Image"], types["rt_msgs/msg/RTAction"]
    for ms in frames:
        pixels = np.full(FRAME * FRAME * 3, ms % 256, np.uint8)
        put("/camera/image_raw", ms, Image(header(ms), FRAME, FRAME, "rgb8", 0, FRAME * 3, pixels))
    zero = np.zeros(3, np.float32)
    for ms in actions:
        msg = RTAction(
            header(ms),
            zero,
            zero,
            np.float32(0.5),
            zero[:2],
            np.float32(0),
            np.uint8(1),
            np.asarray(tokens, np.uint8),
            instruction,
            np.float32(0),
        )
        put("/rt/action", ms + 1, msg)
    writer.close("terminated", 1.0)
    return path


def test_an_action_between_frames_gets_the_earlier_frame_and_early_actions_are_reported(tmp_path, typestore):
    episode = _write(tmp_path / "episode", typestore, frames=(100, 200, 300), actions=(50, 100, 150, 299, 300, 301))
    index = build_dataset([episode], tmp_path / "out", FRAME, identity_frame, CountingEncoder(), progress=False)
    data = StoredDataset(tmp_path / "out")
    assert data.stamps[:, 1].tolist() == [ms * 1_000_000 for ms in (100, 100, 200, 300, 300)]
    assert data.frames[:, 0, 0, 0].tolist() == [100, 100, 200, 300 % 256, 300 % 256]
    assert index.episodes[0].dropped_steps == {"no camera frame at or before the action": 1}
    assert "dropped steps: 1 (no camera frame at or before the action)" in index.describe()


def test_bad_episodes_are_skipped_with_their_reason(tmp_path, typestore, good_episodes):
    bags = tmp_path / "bags"
    bags.mkdir()
    _write(bags / "no_frames", typestore, actions=(100, 200))
    _write(bags / "no_actions", typestore, frames=(100, 200))
    _write(bags / "no_instruction", typestore, instruction="", frames=(100,), actions=(100,))
    _write(bags / "only_later_frames", typestore, frames=(500,), actions=(100, 200))
    _write(bags / "bad_tokens", typestore, frames=(100,), actions=(100,), tokens=(1, 2, 3))
    _write(bags / "bad_mode_token", typestore, frames=(100,), actions=(100,), tokens=(7,) + (128,) * 10)
    truncated = shutil.copytree(good_episodes[0], bags / "truncated")
    mcap = next(truncated.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    killed = shutil.copytree(good_episodes[1], bags / "killed_recorder")
    (killed / "metadata.yaml").unlink()
    (killed / "episode.json").unlink()
    short = shutil.copytree(good_episodes[0], bags / "short_bag")
    info = read_episode_info(short)
    info.message_counts["/rt/action"] += 2
    write_episode_info(short, info)
    failed = shutil.copytree(good_episodes[2], bags / "failed_expert")
    update_episode_extra(failed, expert_success=False)
    dagger = shutil.copytree(good_episodes[2], bags / "kept_dagger")  # a policy failed; the expert's labels stand
    update_episode_extra(dagger, expert_success=False, driven_by="models/rt1_sim")
    kept = write_synthetic_episode(bags / "kept", typestore, steps=3, frame_size=(FRAME, FRAME))
    (tmp_path / "empty").mkdir()

    index = build_dataset(
        [bags, tmp_path / "empty", tmp_path / "missing"],
        tmp_path / "out",
        FRAME,
        identity_frame,
        CountingEncoder(),
        progress=False,
    )
    assert [e.name for e in index.episodes] == ["kept", "kept_dagger"] and kept.outcome == "terminated"
    reasons = {s.source.rsplit("/", 1)[-1]: s.reason for s in index.skipped}
    assert reasons == {
        "missing": "path does not exist",
        "empty": "no rosbag2 episode found",
        "bad_mode_token": reasons["bad_mode_token"],
        "bad_tokens": "action 0 has 3 tokens, expected 0 or 11",
        "failed_expert": "expert demonstration failed (extra.expert_success is false; see --include-failed)",
        "killed_recorder": reasons["killed_recorder"],
        "no_actions": "no actions on /rt/action",
        "no_frames": "no camera frames on /camera/image_raw",
        "no_instruction": reasons["no_instruction"],
        "only_later_frames": "no camera frame at or before any of the 2 actions",
        "short_bag": "truncated bag: /rt/action has 7 messages, episode.json counted 9",
        "truncated": reasons["truncated"],
    }
    assert "outside their valid ranges" in reasons["bad_mode_token"]
    assert reasons["killed_recorder"].startswith("unfinished bag (no metadata.yaml")
    assert reasons["no_instruction"].startswith("unknown instruction")
    assert reasons["truncated"].startswith("unreadable or truncated bag")
    text = index.describe()
    assert "skipped episodes: 12" in text and "no actions on /rt/action" in text

    index = build_dataset(
        [failed],
        tmp_path / "with_failed",
        FRAME,
        identity_frame,
        CountingEncoder(),
        include_failed=True,
        progress=False,
    )
    assert index.num_steps == 9


def test_no_usable_episode_is_an_error_naming_the_reasons(tmp_path, typestore):
    episode = _write(tmp_path / "no_actions", typestore, frames=(100,))
    with pytest.raises(ValueError, match="no actions on /rt/action"):
        build_dataset([episode], tmp_path / "out", FRAME, identity_frame, CountingEncoder(), progress=False)


def test_cli_builds_with_a_preset_size_and_describes_the_dataset(tmp_path, good_episodes, capsys):
    out = tmp_path / "ds"
    assert rt_dataset(["build", str(good_episodes[0]), "--out", str(out), "--image-size", "16"]) == 0
    assert StoredDataset(out).frames.shape == (7, 16, 16, 3)
    assert rt_dataset(["build", str(good_episodes[0]), "--out", str(out), "--image-size", "16"]) == 1
    assert "already holds a dataset" in capsys.readouterr().err
    (out / layout.HISTOGRAM_FILE).unlink()
    assert rt_dataset(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "steps: 7 in 1 episodes" in text and "frames: 16x16" in text and "world_vector.x" in text
    assert (out / layout.HISTOGRAM_FILE).is_file()
    assert rt_dataset(["info", str(tmp_path)]) == 1
    assert rt_dataset(["build", str(good_episodes[0]), "--out", str(tmp_path / "x")]) == 2

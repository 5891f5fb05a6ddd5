"""rt-dataset export --format lerobot, read back with independent readers: pyarrow and pandas for the parquet
files, PyAV (FFmpeg's decoders) for the MP4s. Actions, tokens, stamps and instructions must come back exactly,
frames within the codec's error:

- yuv420p (the default, LeRobot's): every frame at least 24 dB PSNR against its source (the chroma of small,
  sharp-edged frames is halved: single pixels at colour edges can be off by over 100 levels);
- yuv444p with --crf 0: every pixel within 2 levels (only the RGB <-> YUV conversion rounds), so every frame is
  told apart from its neighbours (the synthetic frames' pixel (0, 0) counts frames in steps of 3).
"""

import json
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from dataset_helpers import FRACTAL, FRAME

from rt_policy_node.data.cli import main as rt_dataset
from rt_policy_node.data.cli import resize_frame
from rt_policy_node.data.dataset import StoredDataset
from rt_policy_node.data.episode_reader import read_episode
from rt_policy_node.data.lerobot import CAMERA_KEY, VideoOptions, export_lerobot
from rt_policy_node.data.rlds import import_rlds
from rt_policy_node.policies.action_tokenizer import ActionTokenizer

MIN_PSNR_DB = 24.0
LOSSLESS_MAX_ERROR = 2


def read_lerobot(root: Path) -> dict:
    """Everything an exported dataset holds, read with pyarrow, pandas and PyAV only."""
    info = json.loads((root / "meta" / "info.json").read_text())
    episodes = pq.read_table(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet").to_pylist()
    data = [
        pq.read_table(root / info["data_path"].format(chunk_index=c, file_index=f))
        for c, f in sorted({(e["data/chunk_index"], e["data/file_index"]) for e in episodes})
    ]
    videos = {}
    for episode in episodes:
        key = (episode[f"videos/{CAMERA_KEY}/chunk_index"], episode[f"videos/{CAMERA_KEY}/file_index"])
        if key not in videos:
            path = root / info["video_path"].format(video_key=CAMERA_KEY, chunk_index=key[0], file_index=key[1])
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                decoded = [(frame.time, frame.to_ndarray(format="rgb24")) for frame in container.decode(stream)]
                videos[key] = (stream.codec_context.name, stream.pix_fmt, decoded)
    return {
        "info": info,
        "episodes": episodes,
        "rows": [row for table in data for row in table.to_pylist()],
        "schema": data[0].schema,
        "tasks": pd.read_parquet(root / "meta" / "tasks.parquet"),
        "stats": json.loads((root / "meta" / "stats.json").read_text()),
        "videos": videos,
    }


def episode_frames(read: dict, episode: dict) -> np.ndarray:
    """The decoded frames LeRobot's reader would pick for an episode's rows: the one shown at
    from_timestamp + timestamp."""
    _, _, decoded = read["videos"][
        (episode[f"videos/{CAMERA_KEY}/chunk_index"], episode[f"videos/{CAMERA_KEY}/file_index"])
    ]
    times = np.array([t for t, _ in decoded])
    rows = read["rows"][episode["dataset_from_index"] : episode["dataset_to_index"]]
    picked = []
    for row in rows:
        wanted = episode[f"videos/{CAMERA_KEY}/from_timestamp"] + row["timestamp"]
        nearest = int(np.argmin(np.abs(times - wanted)))
        assert abs(times[nearest] - wanted) < 1e-4
        picked.append(decoded[nearest][1])
    return np.stack(picked)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


@pytest.fixture(scope="module")
def from_bags(tmp_path_factory, good_episodes):
    out = tmp_path_factory.mktemp("lerobot") / "bags"
    summary = export_lerobot([good_episodes[0].parent], out)
    sources = [read_episode(path, ActionTokenizer(), np.array) for path in good_episodes]
    return summary, read_lerobot(out), sources


def test_layout_and_info_are_lerobots_v3(from_bags):
    summary, read, sources = from_bags
    info = read["info"]
    assert info["codebase_version"] == "v3.0"
    assert info["total_episodes"] == 3 == summary.episodes
    assert info["total_frames"] == sum(len(s.actions) for s in sources) == len(read["rows"])
    assert info["total_tasks"] == 2 and info["splits"] == {"train": "0:3"}
    # The synthetic recorder acts every 3 frames of 10 Hz: the step rate is 3.33 Hz.
    assert info["fps"] == 3 == summary.fps
    camera = info["features"][CAMERA_KEY]
    assert camera["dtype"] == "video" and camera["shape"] == [FRAME, FRAME, 3]
    assert camera["info"]["video.codec"] == "h264" and camera["info"]["video.pix_fmt"] == "yuv420p"
    assert info["features"]["action"]["names"][:4] == ["mode", "world_vector.x", "world_vector.y", "world_vector.z"]
    for name in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert info["features"][name]["shape"] == [1]
    codec, pix_fmt, _ = read["videos"][(0, 0)]
    assert (codec, pix_fmt) == ("h264", "yuv420p")
    hf = json.loads(read["schema"].metadata[b"huggingface"])["info"]["features"]
    assert hf["action"] == {"feature": {"dtype": "float32", "_type": "Value"}, "length": 11, "_type": "Sequence"}
    assert set(read["schema"].names) == {k for k, v in info["features"].items() if v["dtype"] != "video"}


def test_actions_tokens_stamps_and_tasks_come_back_exactly(from_bags):
    _, read, sources = from_bags
    slices = ActionTokenizer().slices
    for episode, source in zip(read["episodes"], sources, strict=True):
        rows = read["rows"][episode["dataset_from_index"] : episode["dataset_to_index"]]
        assert episode["length"] == len(rows) == len(source.actions)
        assert episode["tasks"] == [source.instruction]
        np.testing.assert_array_equal(np.array([r["action"] for r in rows], np.float32), source.actions)
        np.testing.assert_array_equal([r["action.tokens"] for r in rows], source.tokens)
        np.testing.assert_array_equal([r["observation.stamp_ns"] for r in rows], source.stamps)
        np.testing.assert_array_equal(
            [r["action.world_vector"] for r in rows], source.actions[:, slices["world_vector"]]
        )
        np.testing.assert_array_equal(
            [r["action.gripper_closedness"] for r in rows], source.actions[:, slices["gripper_closedness"]][:, 0]
        )
        np.testing.assert_array_equal([r["action.mode"] for r in rows], source.actions[:, 0].astype(int))
        assert [r["frame_index"] for r in rows] == list(range(len(rows)))
        assert [r["timestamp"] for r in rows] == [np.float32(i / 3) for i in range(len(rows))]
        assert {r["episode_index"] for r in rows} == {episode["episode_index"]}
        assert [r["index"] for r in rows] == list(range(episode["dataset_from_index"], episode["dataset_to_index"]))
        # LeRobot looks tasks up by text in a frame indexed by `task`.
        assert {r["task_index"] for r in rows} == {int(read["tasks"].loc[source.instruction, "task_index"])}


def test_frames_come_back_within_codec_tolerance(from_bags):
    _, read, sources = from_bags
    _, _, decoded = read["videos"][(0, 0)]
    assert len(decoded) == read["info"]["total_frames"]
    assert [round(t * 3) for t, _ in decoded] == list(range(len(decoded)))
    for episode, source in zip(read["episodes"], sources, strict=True):
        frames = episode_frames(read, episode)
        assert min(psnr(a, b) for a, b in zip(frames, source.frames, strict=True)) >= MIN_PSNR_DB


def test_stats_are_lerobots(from_bags):
    _, read, sources = from_bags
    stats = read["stats"]
    actions = np.concatenate([s.actions for s in sources])
    np.testing.assert_allclose(stats["action"]["mean"], actions.mean(axis=0), rtol=1e-6, atol=1e-7)
    assert stats["action"]["count"] == [len(actions)]
    assert set(stats["action"]) == {"min", "max", "mean", "std", "count", "q01", "q10", "q50", "q90", "q99"}
    assert len(stats["action.mode"]["max"]) == len(stats["timestamp"]["mean"]) == 1  # shape (1,), as LeRobot's
    image = np.array(stats[CAMERA_KEY]["mean"])
    assert image.shape == (3, 1, 1) and ((image >= 0) & (image <= 1)).all()
    assert "stats/action/mean" in read["episodes"][0]


def test_a_built_dataset_exports_nearly_losslessly_with_yuv444p(tmp_path, built):
    source_dir, index, _ = built
    out = tmp_path / "lerobot"
    args = ["export", "--format", "lerobot", str(source_dir), "--out", str(out), "--pix-fmt", "yuv444p", "--crf", "0"]
    assert rt_dataset(args) == 0
    read = read_lerobot(out)
    source = StoredDataset(source_dir)
    actions = np.load(source_dir / "actions.npy")
    assert [e["length"] for e in read["episodes"]] == [e.length for e in index.episodes]
    np.testing.assert_array_equal(np.array([r["action"] for r in read["rows"]], np.float32), actions)
    np.testing.assert_array_equal([r["action.tokens"] for r in read["rows"]], source.tokens)
    frames = np.concatenate([episode_frames(read, e) for e in read["episodes"]])
    assert np.abs(frames.astype(int) - np.asarray(source.frames, int)).max() <= LOSSLESS_MAX_ERROR
    assert read["videos"][(0, 0)][1] == "yuv444p"


def test_an_imported_rlds_dataset_exports_its_tasks_and_actions(tmp_path):
    imported = tmp_path / "fractal"
    index = import_rlds([FRACTAL], imported, 48, lambda f: resize_frame(f, 48), progress=False)
    out = tmp_path / "lerobot"
    summary = export_lerobot([imported], out, video=VideoOptions(codec="av1", crf=30))
    read = read_lerobot(out)
    assert summary.fps == 3 and read["info"]["features"][CAMERA_KEY]["info"]["video.codec"] == "av1"
    assert read["videos"][(0, 0)][0] in ("av1", "libdav1d", "libaom-av1")
    assert [e["tasks"][0] for e in read["episodes"]] == [index.instructions[e.instruction_id] for e in index.episodes]
    np.testing.assert_array_equal(
        np.array([r["action"] for r in read["rows"]], np.float32), np.load(imported / "actions.npy")
    )
    frames = np.concatenate([episode_frames(read, e) for e in read["episodes"]])
    source = StoredDataset(imported).frames
    assert min(psnr(a, b) for a, b in zip(frames, source, strict=True)) >= MIN_PSNR_DB


def test_refusals_name_the_problem(tmp_path, built, capsys):
    source_dir, _, _ = built
    imported = tmp_path / "fractal"
    import_rlds([FRACTAL], imported, 48, lambda f: resize_frame(f, 48), progress=False)
    with pytest.raises(ValueError, match=r"frames are 48x48, earlier episodes' 32x32"):
        export_lerobot([source_dir, imported], tmp_path / "mixed")
    out = tmp_path / "lerobot"
    assert rt_dataset(["export", "--format", "lerobot", str(source_dir), "--out", str(out)]) == 0
    assert rt_dataset(["export", "--format", "lerobot", str(source_dir), "--out", str(out)]) == 1
    assert "pass --overwrite" in capsys.readouterr().err
    assert rt_dataset(["export", "--format", "lerobot", str(source_dir), "--out", str(out), "--overwrite"]) == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    assert rt_dataset(["export", "--format", "lerobot", str(empty), "--out", str(tmp_path / "none")]) == 1
    assert "no usable episode" in capsys.readouterr().err

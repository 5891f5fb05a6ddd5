"""Episodes (recorded bags or a built dataset) -> a LeRobotDataset v3.0 directory, for Hugging Face LeRobot users.

Layout written (LeRobot's v3.0 format: many episodes per file, located through the episode metadata):

    meta/info.json                          codebase_version "v3.0", fps, features, path templates, totals
    meta/stats.json                         per feature: min, max, mean, std, count, q01/q10/q50/q90/q99
                                            (pooled from the episodes' own, as LeRobot aggregates them)
    meta/tasks.parquet                      one row per instruction: index `task` (the text), `task_index`
    meta/episodes/chunk-000/file-000.parquet  one row per episode: length, tasks, its rows in the data files,
                                            its span in each video file, its own stats (`stats/...`)
    data/chunk-XXX/file-XXX.parquet         one row per step, one row group per episode
    videos/observation.images.camera/chunk-XXX/file-XXX.mp4   the steps' frames, episodes back to back

A step is what `rt-dataset build` makes of an RTAction: the action and the newest camera frame at or before it
(a built dataset's stored frames, or from bags the camera frames at their own resolution). Row features:
`action` (the 11 values in RT-1's token order, named), each action field on its own (`action.world_vector`,
`action.rotation_delta`, `action.gripper_closedness`, `action.base_displacement`, `action.base_rotation`,
`action.mode`: 0 terminate, 1 arm, 2 base), `action.tokens` (the 11 labels), `observation.stamp_ns` (the
action's and the frame's own stamps), and LeRobot's `timestamp` (frame_index / fps), `frame_index`,
`episode_index`, `index` and `task_index`. The instruction is the episode's task.

Video frame k of a file shows at k / fps; an episode's `videos/<key>/from_timestamp` is where its first frame
is, so LeRobot's reader finds the frame of row `timestamp` t at from_timestamp + t. Frames go through a video
codec (H.264 by default, yuv420p as LeRobot records): they come back within the codec's error, not bit-exact.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rt_policy_node.data import dataset as layout
from rt_policy_node.data.action_stats import dimension_names
from rt_policy_node.data.builder import find_episodes
from rt_policy_node.data.dataset import SkippedEpisode, StoredDataset
from rt_policy_node.data.episode_reader import DEFAULT_TOPICS, BadEpisode, EpisodeTopics, read_episode, read_sidecar
from rt_policy_node.policies.action_tokenizer import RT1_ACTION_SPEC, ActionTokenizer, spec_to_json

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000
DATA_FILES_SIZE_IN_MB = 100
VIDEO_FILES_SIZE_IN_MB = 200
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-000/file-000.parquet"
CAMERA_KEY = "observation.images.camera"
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
# Image statistics are estimated, as LeRobot's are: from up to this many frames per episode, each subsampled to
# at most STAT_SIDE pixels a side.
STAT_FRAMES = 25
STAT_SIDE = 64
DEFAULT_FPS = 3
CODECS = {"h264": "libx264", "av1": "libsvtav1"}
# RT-1 spec field -> (feature name, axis names).
ACTION_FEATURES = {
    "world_vector": ("action.world_vector", ["x", "y", "z"]),
    "rotation_delta": ("action.rotation_delta", ["roll", "pitch", "yaw"]),
    "gripper_closedness": ("action.gripper_closedness", None),
    "base_displacement": ("action.base_displacement", ["x", "y"]),
    "base_rotation": ("action.base_rotation", None),
}


@dataclass
class ExportEpisode:
    """One episode's steps, ready to write."""

    name: str
    instruction: str
    frames: np.ndarray  # uint8 [L, H, W, 3]
    actions: np.ndarray  # float32 [L, 11] in RT-1's token order
    tokens: np.ndarray  # [L, 11]
    stamps: np.ndarray  # int64 [L, 2]: action stamp, frame stamp (ns)


@dataclass
class VideoOptions:
    """How frames are encoded: codec (h264 or av1), constant rate factor, keyframe interval, pixel format."""

    codec: str = "h264"
    crf: int = 18
    gop: int = 2
    pix_fmt: str = "yuv420p"


def _episodes_from_dataset(path: Path) -> Iterator[ExportEpisode]:
    """A built (or imported) dataset's episodes with their stored frames."""
    data = StoredDataset(path)
    if data.index.action_spec != spec_to_json(RT1_ACTION_SPEC):
        raise ValueError(f"{path}: its action spec is not RT-1's released one, which the exported features name")
    actions = np.load(path / layout.ACTIONS_FILE, mmap_mode="r")
    for episode in data.index.episodes:
        steps = slice(episode.start, episode.start + episode.length)
        yield ExportEpisode(
            name=episode.name,
            instruction=data.index.instructions[episode.instruction_id],
            frames=np.asarray(data.frames[steps]),
            actions=np.asarray(actions[steps], np.float32),
            tokens=np.asarray(data.tokens[steps]),
            stamps=np.asarray(data.stamps[steps], np.int64),
        )


def _episodes_from_bags(
    paths: list[Path], tokenizer: ActionTokenizer, topics: EpisodeTopics, skipped: list[SkippedEpisode]
) -> Iterator[ExportEpisode]:
    """The usable episodes of bags, frames at the camera's resolution (failed expert demonstrations left out)."""
    episode_dirs, missing = find_episodes(paths)
    skipped.extend(missing)
    for path in episode_dirs:
        try:
            sidecar = read_sidecar(path)
            if sidecar and sidecar.extra.get("expert_success") is False and not sidecar.extra.get("driven_by"):
                raise BadEpisode("expert demonstration failed (extra.expert_success is false)")
            steps = read_episode(path, tokenizer, np.array, topics)
        except BadEpisode as err:
            skipped.append(SkippedEpisode(str(path), str(err)))
            continue
        yield ExportEpisode(path.name, steps.instruction, steps.frames, steps.actions, steps.tokens, steps.stamps)


def source_episodes(
    paths: Iterable[str | Path],
    skipped: list[SkippedEpisode],
    tokenizer: ActionTokenizer | None = None,
    topics: EpisodeTopics = DEFAULT_TOPICS,
) -> Iterator[ExportEpisode]:
    """Every episode of `paths` in order: a built dataset (a folder with index.json) gives its stored steps,
    anything else is searched for episode bags. Unusable bags are added to `skipped` with their reason."""
    tokenizer = tokenizer or ActionTokenizer()
    bags: list[Path] = []
    for path in map(Path, paths):
        if (path / layout.INDEX_FILE).is_file():
            if bags:
                yield from _episodes_from_bags(bags, tokenizer, topics, skipped)
                bags = []
            yield from _episodes_from_dataset(path)
        else:
            bags.append(path)
    if bags:
        yield from _episodes_from_bags(bags, tokenizer, topics, skipped)


def _feature(dtype: str, shape: list[int], names: list[str] | None = None) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "names": names}


def lerobot_features(height: int, width: int, fps: int, video: VideoOptions) -> dict[str, dict[str, Any]]:
    """info.json's `features` for frames of height x width."""
    features = {
        CAMERA_KEY: {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": {
                "video.height": height,
                "video.width": width,
                "video.codec": video.codec,
                "video.pix_fmt": video.pix_fmt,
                "video.is_depth_map": False,
                "video.fps": fps,
                "video.channels": 3,
                "has_audio": False,
            },
        },
        "action": _feature("float32", [len(dimension_names(RT1_ACTION_SPEC))], dimension_names(RT1_ACTION_SPEC)),
    }
    for dim in RT1_ACTION_SPEC:
        if dim.name in ACTION_FEATURES:
            name, axes = ACTION_FEATURES[dim.name]
            features[name] = _feature("float32", [dim.size], axes)
    features["action.mode"] = _feature("int64", [1])
    features["action.tokens"] = _feature(
        "int64", [len(dimension_names(RT1_ACTION_SPEC))], dimension_names(RT1_ACTION_SPEC)
    )
    features["observation.stamp_ns"] = _feature("int64", [2], ["action", "frame"])
    for name, dtype in (
        ("timestamp", "float32"),
        *((n, "int64") for n in ("frame_index", "episode_index", "index", "task_index")),
    ):
        features[name] = _feature(dtype, [1])
    return features


def _columns(
    episode: ExportEpisode, episode_index: int, first_index: int, task_index: int, fps: int
) -> dict[str, np.ndarray]:
    """The episode's rows, by feature name (shape-(1,) features as scalars, as LeRobot stores them)."""
    length = len(episode.actions)
    slices = ActionTokenizer(RT1_ACTION_SPEC).slices
    columns = {"action": episode.actions.astype(np.float32)}
    for dim, (name, _) in ((d, ACTION_FEATURES[d.name]) for d in RT1_ACTION_SPEC if d.name in ACTION_FEATURES):
        values = episode.actions[:, slices[dim.name]].astype(np.float32)
        columns[name] = values[:, 0] if dim.size == 1 else values
    columns["action.mode"] = episode.actions[:, slices["mode"]][:, 0].astype(np.int64)
    columns["action.tokens"] = episode.tokens.astype(np.int64)
    columns["observation.stamp_ns"] = episode.stamps.astype(np.int64)
    frame_index = np.arange(length, dtype=np.int64)
    columns["timestamp"] = (frame_index / fps).astype(np.float32)
    columns["frame_index"] = frame_index
    columns["episode_index"] = np.full(length, episode_index, np.int64)
    columns["index"] = first_index + frame_index
    columns["task_index"] = np.full(length, task_index, np.int64)
    return columns


def _arrow_column(values: np.ndarray) -> pa.Array:
    if values.ndim == 1:
        return pa.array(values)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), values.shape[1])


def _hf_features(features: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The `datasets` library's description of the data columns (stored in the parquet schema metadata)."""
    out = {}
    for name, feature in features.items():
        if feature["dtype"] == "video":
            continue
        value = {"dtype": feature["dtype"], "_type": "Value"}
        out[name] = (
            value if feature["shape"] == [1] else {"feature": value, "length": feature["shape"][0], "_type": "Sequence"}
        )
    return out


def _stats(values: np.ndarray) -> dict[str, np.ndarray]:
    """LeRobot's statistics of `values [N, ...]` along the first axis (a scalar feature's as shape (1,))."""
    values = values.astype(np.float64).reshape(len(values), -1)
    stats = {
        "min": values.min(axis=0),
        "max": values.max(axis=0),
        "mean": values.mean(axis=0),
        "std": values.std(axis=0),
        "count": np.array([len(values)]),
    }
    for q in QUANTILES:
        stats[f"q{round(q * 100):02d}"] = np.quantile(values, q, axis=0)
    return stats


def _image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Per-channel statistics of frames scaled to [0, 1], shaped (3, 1, 1) as LeRobot keeps them, estimated from
    a sample of the frames and pixels; `count` is the number of frames sampled."""
    sampled = frames[:: max(1, len(frames) // STAT_FRAMES)]
    stride = max(1, -(-max(sampled.shape[1:3]) // STAT_SIDE))
    pixels = sampled[:, ::stride, ::stride].reshape(-1, 3).astype(np.float64) / 255.0
    stats = {k: v.reshape(3, 1, 1) for k, v in _stats(pixels).items() if k != "count"}
    return stats | {"count": np.array([len(sampled)])}


def _aggregate(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Dataset statistics from the episodes': exact count, min, max, mean and std (pooled variance); quantiles
    bounded as LeRobot bounds them (the lowest episode value for q01-q50, the highest above)."""
    counts = np.array([float(p["count"][0]) for p in parts])
    shape = (-1,) + (1,) * np.ndim(parts[0]["mean"])
    weights = (counts / counts.sum()).reshape(shape)
    means = np.stack([p["mean"] for p in parts])
    mean = (weights * means).sum(axis=0)
    variance = (weights * (np.stack([p["std"] for p in parts]) ** 2 + (means - mean) ** 2)).sum(axis=0)
    out = {
        "min": np.min([p["min"] for p in parts], axis=0),
        "max": np.max([p["max"] for p in parts], axis=0),
        "mean": mean,
        "std": np.sqrt(variance),
        "count": np.array([int(counts.sum())]),
    }
    for q in QUANTILES:
        key = f"q{round(q * 100):02d}"
        values = np.stack([p[key] for p in parts])
        out[key] = values.min(axis=0) if q <= 0.5 else values.max(axis=0)
    return out


def _as_lists(stats: dict[str, np.ndarray]) -> dict[str, Any]:
    return {k: np.asarray(v).tolist() for k, v in stats.items()}


class _VideoFiles:
    """One camera's MP4 files: frames appended episode by episode, a new file past the size limit."""

    def __init__(self, out: Path, size: tuple[int, int], fps: int, options: VideoOptions, limit_mb: int) -> None:
        self.out, self.size, self.fps, self.options, self.limit = out, size, fps, options, limit_mb * 1e6
        self.chunk, self.file, self.frames_in_file = 0, 0, 0
        self.path: Path | None = None
        self.writer: Any = None

    def _open(self) -> None:
        self.path = self.out / VIDEO_PATH.format(video_key=CAMERA_KEY, chunk_index=self.chunk, file_index=self.file)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        params = ["-crf", str(self.options.crf), "-g", str(self.options.gop)]
        if self.options.codec == "h264":
            params += ["-preset", "medium", "-bf", "0"]
        self.writer = imageio_ffmpeg.write_frames(
            str(self.path),
            (self.size[1], self.size[0]),
            fps=self.fps,
            codec=CODECS[self.options.codec],
            pix_fmt_out=self.options.pix_fmt,
            quality=None,
            macro_block_size=1,
            output_params=params,
        )
        self.writer.send(None)
        self.frames_in_file = 0

    def append(self, frames: np.ndarray) -> tuple[int, int, float, float]:
        """Writes an episode's frames; returns (chunk, file, from_timestamp, to_timestamp)."""
        if self.writer is None:
            self._open()
        elif self.path.is_file() and self.path.stat().st_size > self.limit:
            self.close()
            self.chunk, self.file = (self.chunk + 1, 0) if self.file == CHUNKS_SIZE - 1 else (self.chunk, self.file + 1)
            self._open()
        first = self.frames_in_file
        for frame in frames:
            self.writer.send(np.ascontiguousarray(frame))
        self.frames_in_file += len(frames)
        return self.chunk, self.file, first / self.fps, self.frames_in_file / self.fps

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class _DataFiles:
    """The step rows: one parquet row group per episode, a new file past the size limit."""

    def __init__(self, out: Path, schema: pa.Schema, limit_mb: int) -> None:
        self.out, self.schema, self.limit = out, schema, limit_mb * 1e6
        self.chunk, self.file = 0, 0
        self.path: Path | None = None
        self.writer: pq.ParquetWriter | None = None

    def append(self, table: pa.Table) -> tuple[int, int]:
        if self.writer is not None and self.path.stat().st_size > self.limit:
            self.close()
            self.chunk, self.file = (self.chunk + 1, 0) if self.file == CHUNKS_SIZE - 1 else (self.chunk, self.file + 1)
        if self.writer is None:
            self.path = self.out / DATA_PATH.format(chunk_index=self.chunk, file_index=self.file)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.write_table(table, row_group_size=max(1, table.num_rows))
        return self.chunk, self.file

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _tasks_table(tasks: list[str]) -> pa.Table:
    """meta/tasks.parquet as pandas writes a frame indexed by `task`, so `pd.read_parquet` gives that index."""
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()), "task": pa.array(tasks, pa.string())})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {
                "name": "task_index",
                "field_name": "task_index",
                "pandas_type": "int64",
                "numpy_type": "int64",
                "metadata": None,
            },
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    return table.replace_schema_metadata({"pandas": json.dumps(pandas_meta)})


@dataclass
class ExportSummary:
    """What an export wrote, and the bags it left out."""

    episodes: int = 0
    frames: int = 0
    tasks: list[str] = field(default_factory=list)
    fps: int = 0
    skipped: list[SkippedEpisode] = field(default_factory=list)


def _fps_of(episode: ExportEpisode) -> int:
    """The step rate of an episode from its action stamps (median period), or DEFAULT_FPS."""
    periods = np.diff(episode.stamps[:, 0])
    periods = periods[periods > 0]
    return max(1, round(1e9 / float(np.median(periods)))) if len(periods) else DEFAULT_FPS


def export_lerobot(
    paths: Iterable[str | Path],
    out: str | Path,
    fps: int | None = None,
    video: VideoOptions | None = None,
    robot_type: str | None = None,
    tokenizer: ActionTokenizer | None = None,
    topics: EpisodeTopics = DEFAULT_TOPICS,
    overwrite: bool = False,
) -> ExportSummary:
    """Writes every episode of `paths` (bags or built datasets) as a LeRobotDataset v3.0 in `out`.

    `fps` defaults to the first episode's step rate (median action period). Raises ValueError when `out` already
    holds a dataset (unless `overwrite`), when no episode is usable, or when episodes' frames differ in size
    (one video feature has one shape).
    """
    video = video or VideoOptions()
    if video.codec not in CODECS:
        raise ValueError(f"codec must be one of {sorted(CODECS)}, got {video.codec!r}")
    out = Path(out)
    present = [out / name for name in ("meta", "data", "videos") if (out / name).exists()]
    if present:
        if not (overwrite and (out / "meta" / "info.json").is_file()):
            names = ", ".join(p.name for p in present)
            raise FileExistsError(f"{out} already holds {names}; pass --overwrite to replace a LeRobot dataset there")
        for target in present:
            shutil.rmtree(target)
    summary = ExportSummary()
    tasks: dict[str, int] = {}
    episode_rows: list[dict[str, Any]] = []
    episode_stats: dict[str, list[dict[str, np.ndarray]]] = {}
    videos: _VideoFiles | None = None
    data: _DataFiles | None = None
    features: dict[str, dict[str, Any]] = {}
    try:
        for episode in source_episodes(paths, summary.skipped, tokenizer, topics):
            height, width = episode.frames.shape[1:3]
            if videos is None:
                summary.fps = fps or _fps_of(episode)
                if video.pix_fmt == "yuv420p" and (height % 2 or width % 2):
                    raise ValueError(f"{episode.name}: {width}x{height} frames have an odd side; yuv420p needs even")
                features = lerobot_features(height, width, summary.fps, video)
                fields = []
                for name, feature in features.items():
                    if feature["dtype"] == "video":
                        continue
                    kind = pa.float32() if feature["dtype"] == "float32" else pa.int64()
                    fields.append(
                        pa.field(name, kind if feature["shape"] == [1] else pa.list_(kind, feature["shape"][0]))
                    )
                schema = pa.schema(
                    fields, metadata={"huggingface": json.dumps({"info": {"features": _hf_features(features)}})}
                )
                videos = _VideoFiles(out, (height, width), summary.fps, video, VIDEO_FILES_SIZE_IN_MB)
                data = _DataFiles(out, schema, DATA_FILES_SIZE_IN_MB)
            elif (height, width) != tuple(features[CAMERA_KEY]["shape"][:2]):
                expected = features[CAMERA_KEY]["shape"]
                raise ValueError(
                    f"{episode.name}: frames are {width}x{height}, earlier episodes' {expected[1]}x{expected[0]};"
                    " one LeRobot camera feature has one size: export them separately"
                )
            task_index = tasks.setdefault(episode.instruction, len(tasks))
            columns = _columns(episode, summary.episodes, summary.frames, task_index, summary.fps)
            table = pa.table({name: _arrow_column(values) for name, values in columns.items()}, schema=data.schema)
            data_chunk, data_file = data.append(table)
            video_chunk, video_file, start_s, end_s = videos.append(episode.frames)
            row = {
                "episode_index": summary.episodes,
                "tasks": [episode.instruction],
                "length": len(episode.actions),
                "data/chunk_index": data_chunk,
                "data/file_index": data_file,
                "dataset_from_index": summary.frames,
                "dataset_to_index": summary.frames + len(episode.actions),
                f"videos/{CAMERA_KEY}/chunk_index": video_chunk,
                f"videos/{CAMERA_KEY}/file_index": video_file,
                f"videos/{CAMERA_KEY}/from_timestamp": start_s,
                f"videos/{CAMERA_KEY}/to_timestamp": end_s,
                "meta/episodes/chunk_index": 0,
                "meta/episodes/file_index": 0,
            }
            stats = {name: _stats(values) for name, values in columns.items()}
            stats[CAMERA_KEY] = _image_stats(episode.frames)
            for name, feature_stats in stats.items():
                row.update({f"stats/{name}/{k}": v.tolist() for k, v in feature_stats.items()})
                episode_stats.setdefault(name, []).append(feature_stats)
            episode_rows.append(row)
            summary.episodes += 1
            summary.frames += len(episode.actions)
    finally:
        if videos is not None:
            videos.close()
        if data is not None:
            data.close()
    if summary.episodes == 0:
        reasons = "\n".join(f"  {s.source}: {s.reason}" for s in summary.skipped)
        raise ValueError(f"no usable episode in the given paths:\n{reasons}")
    summary.tasks = list(tasks)
    meta = out / "meta"
    (meta / "episodes" / "chunk-000").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(episode_rows), out / EPISODES_PATH)
    pq.write_table(_tasks_table(summary.tasks), meta / "tasks.parquet")
    stats = {name: _as_lists(_aggregate(parts)) for name, parts in episode_stats.items()}
    (meta / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": summary.episodes,
        "total_frames": summary.frames,
        "total_tasks": len(summary.tasks),
        "chunks_size": CHUNKS_SIZE,
        "data_files_size_in_mb": DATA_FILES_SIZE_IN_MB,
        "video_files_size_in_mb": VIDEO_FILES_SIZE_IN_MB,
        "fps": summary.fps,
        "splits": {"train": f"0:{summary.episodes}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH,
        "features": features,
    }
    (meta / "info.json").write_text(json.dumps(info, indent=4) + "\n")
    return summary

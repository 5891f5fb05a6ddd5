"""Open X-Embodiment (RLDS) episodes, as TFDS writes them, -> a training dataset (layout in data/dataset.py).

A TFDS dataset folder (`NAME/VERSION/`) holds TFRecord shards and `features.json`, which describes each
feature; `dataset_info.json` names the dataset. Each record is one episode as a flat `tf.train.Example`: the
fields of its steps are concatenated under `steps/...` keys (`steps/observation/image` holds one encoded image
per step, `steps/action/world_vector` 3 x T floats; bools and int32 are int64 lists) and the step count is the
length of `steps/is_first`. Nothing here needs TensorFlow (data/tfrecord.py reads the records).

Only datasets in RT-1's own action space are imported (`fractal20220817_data`, RT-1's training data, is one).
Each step's action maps onto the released spec's 11 tokens field by field:

    world_vector                         -> world_vector
    rotation_delta                       -> rotation_delta
    gripper_closedness_action            -> gripper_closedness
    base_displacement_vertical_rotation  -> base_rotation
    base_displacement_vector             -> base_displacement
    terminate_episode (one-hot of 3)     -> mode: the index of the 1, as RT-1's tokenizer reads it
                                            (0 terminate, 1 arm, 2 base)

A step whose `terminate_episode` is not one-hot (fractal has all-zero ones) has no mode and is dropped, counted
in its episode's `dropped_steps`. Frames are decoded as TFDS decodes them (libjpeg-turbo with the fast integer
IDCT, through simplejpeg), then resized like `rt-dataset build` does. `observation/natural_language_embedding`
is kept as given (Universal Sentence Encoder large v5 in Open X-Embodiment), so the dataset's `text_encoder`
says so and nothing is re-embedded. Records that cannot be used (bad CRC, cut-off file, missing or misshapen
feature, undecodable image) are skipped with their reason in the index, never a crash.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import simplejpeg
from PIL import Image
from tqdm import tqdm

from rt_policy_node.data import dataset as layout
from rt_policy_node.data.builder import finish_dataset, prepare_output
from rt_policy_node.data.dataset import DatasetIndex, EpisodeEntry, SkippedEpisode
from rt_policy_node.data.npy_writer import NpyAppender
from rt_policy_node.data.tfrecord import parse_example, read_records
from rt_policy_node.policies.action_tokenizer import ActionTokenizer

FEATURES_FILE = "features.json"
DATASET_INFO_FILE = "dataset_info.json"
# The name recorded as the dataset's text encoder: Open X-Embodiment's natural_language_embedding is USE large v5.
RLDS_TEXT_ENCODER = "use-large-v5"
# RT-1 ran at 3 Hz; RLDS steps carry no time, so step i is stamped i / fps seconds.
DEFAULT_FPS = 3.0
# RLDS step action field -> (RT-1 spec field, shape).
RT1_ACTION_FIELDS: dict[str, tuple[str, tuple[int, ...]]] = {
    "world_vector": ("world_vector", (3,)),
    "rotation_delta": ("rotation_delta", (3,)),
    "gripper_closedness_action": ("gripper_closedness", (1,)),
    "base_displacement_vertical_rotation": ("base_rotation", (1,)),
    "base_displacement_vector": ("base_displacement", (2,)),
    "terminate_episode": ("mode", (3,)),
}
NOT_ONE_HOT = "action/terminate_episode is not one-hot (no mode)"
ACTION = "steps/action/"
INSTRUCTION = "steps/observation/natural_language_instruction"
EMBEDDING = "steps/observation/natural_language_embedding"
IS_FIRST = "steps/is_first"
# An episode's steps must carry one instruction embedding, to within this (the first step's is kept).
EMBEDDING_TOLERANCE = 1e-5
# Episode-level features with at most this many values are kept in the episode's `extra`.
MAX_EXTRA_VALUES = 16


class RldsError(ValueError):
    """A dataset that cannot be imported at all (no features.json, not RT-1's action space, ...)."""


class BadRecord(Exception):
    """One episode record that cannot be used; the message is the reason the index gives."""


@dataclass(frozen=True)
class FeatureSpec:
    """One leaf of features.json: how a flat Example key is encoded. `shape` is per step under `steps/`."""

    key: str
    kind: str  # "tensor", "image", "text" or the TFDS class name of anything else
    dtype: str
    shape: tuple[int, ...]
    encoding: str = "none"

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    def describe(self) -> str:
        return f"{self.key}: {self.kind} {self.dtype} {list(self.shape)}"


def feature_specs(features: dict[str, Any]) -> dict[str, FeatureSpec]:
    """features.json (TFDS's FeaturesDict proto as JSON) -> its leaves by flat Example key."""
    specs: dict[str, FeatureSpec] = {}

    def walk(node: dict[str, Any], key: str) -> None:
        kind = node.get("pythonClassName", "").rsplit(".", 1)[-1]
        if kind == "FeaturesDict":
            for name, child in node["featuresDict"]["features"].items():
                walk(child, f"{key}/{name}" if key else name)
        elif kind in ("Dataset", "Sequence"):
            walk(node["sequence"]["feature"], key)
        elif kind in ("Tensor", "Scalar"):
            tensor = node["tensor"]
            shape = tuple(int(d) for d in tensor.get("shape", {}).get("dimensions", []))
            encoding = tensor.get("encoding", "none")
            specs[key] = FeatureSpec(key, "tensor", tensor["dtype"], shape, encoding)
        elif kind == "Image":
            image = node["image"]
            shape = tuple(int(d) for d in image.get("shape", {}).get("dimensions", []))
            specs[key] = FeatureSpec(
                key, "image", image.get("dtype", "uint8"), shape, image.get("encodingFormat", "png")
            )
        elif kind == "Text":
            specs[key] = FeatureSpec(key, "text", "string", ())
        else:
            specs[key] = FeatureSpec(key, kind or "unknown", "", ())

    walk(features, "")
    return specs


@dataclass
class RldsSource:
    """One TFDS dataset folder: its name, version, features and shards."""

    directory: Path
    name: str
    version: str
    specs: dict[str, FeatureSpec]
    shards: list[Path] = field(default_factory=list)

    @classmethod
    def open(cls, directory: Path) -> RldsSource:
        features_path = directory / FEATURES_FILE
        try:
            specs = feature_specs(json.loads(features_path.read_text()))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise RldsError(f"{features_path}: unreadable TFDS features description: {err}") from None
        name, version = directory.parent.name, directory.name
        info_path = directory / DATASET_INFO_FILE
        if info_path.is_file():
            try:
                info = json.loads(info_path.read_text())
                name, version = info.get("name", name), info.get("version", version)
            except ValueError as err:
                raise RldsError(f"{info_path}: not JSON: {err}") from None
        return cls(directory, name, version, specs)

    def check_rt1(self, image_key: str) -> None:
        """Raises RldsError unless the steps have RT-1's action dictionary, an image, an instruction and its
        512-d embedding."""
        actions = {k: s for k, s in self.specs.items() if k == ACTION[:-1] or k.startswith(ACTION)}
        expected = {ACTION + name: shape for name, (_, shape) in RT1_ACTION_FIELDS.items()}
        if {k: s.shape for k, s in actions.items()} != expected:
            have = "; ".join(s.describe() for s in actions.values()) or "no steps/action"
            want = ", ".join(f"{name} {list(shape)}" for name, (_, shape) in RT1_ACTION_FIELDS.items())
            raise RldsError(
                f"{self.directory}: {self.name}'s actions are not in RT-1's action space ({have}); import-rlds maps"
                f" only RT-1's action dictionary ({want}), as fractal20220817_data has it"
            )
        if not actions[ACTION + "terminate_episode"].dtype.startswith("int"):
            raise RldsError(
                f"{self.directory}: action/terminate_episode is {actions[ACTION + 'terminate_episode'].dtype}"
            )
        image = self.specs.get(f"steps/observation/{image_key}")
        instruction, embedding = self.specs.get(INSTRUCTION), self.specs.get(EMBEDDING)
        problems = {
            IS_FIRST: "" if IS_FIRST in self.specs else "present (the first-step flag of RLDS)",
            f"steps/observation/{image_key}": "" if image and image.kind == "image" else "an image",
            INSTRUCTION: "" if instruction and instruction.dtype == "string" else "a string",
            EMBEDDING: "" if embedding and embedding.kind == "tensor" and embedding.shape == (512,) else "512 floats",
        }
        for key, expected in problems.items():
            if expected:
                have = self.specs[key].describe() if key in self.specs else "missing"
                raise RldsError(f"{self.directory}: {self.name}'s {key} should be {expected}, features.json: {have}")
        for key, spec in actions.items():
            if spec.encoding != "none":
                raise RldsError(f"{self.directory}: {key} is stored with encoding {spec.encoding!r}, not read here")


def find_sources(paths: Iterable[str | Path]) -> list[RldsSource]:
    """TFDS dataset folders named by `paths` (shards, version folders, or folders above them), each with the
    shards given or all of its own. Raises RldsError for a path that names none."""
    sources: dict[Path, RldsSource] = {}

    def source_of(folder: Path) -> RldsSource:
        if folder not in sources:
            sources[folder] = RldsSource.open(folder)
        return sources[folder]

    for path in map(Path, paths):
        if not path.exists():
            raise RldsError(f"{path}: does not exist")
        if path.is_file():
            if not (path.parent / FEATURES_FILE).is_file():
                raise RldsError(
                    f"{path}: no {FEATURES_FILE} beside it (TFDS writes one in the dataset's version folder)"
                )
            source_of(path.parent).shards.append(path)
            continue
        folders = sorted(p.parent for p in path.rglob(FEATURES_FILE))
        if not folders:
            raise RldsError(f"{path}: no TFDS dataset in it (no {FEATURES_FILE})")
        for folder in folders:
            source_of(folder).shards.extend(sorted(p for p in folder.iterdir() if ".tfrecord" in p.name))
    for source in sources.values():
        source.shards = sorted(set(source.shards))
        if not source.shards:
            raise RldsError(f"{source.directory}: no TFRecord shards (files named *.tfrecord*)")
    return list(sources.values())


@dataclass
class RldsEpisode:
    """One imported episode's steps (after dropping those without a mode)."""

    instruction: str
    embedding: np.ndarray  # float32 [512]
    frames: np.ndarray  # uint8 [L, S, S, 3], after the frame transform
    tokens: np.ndarray  # uint8 [L, 11]
    actions: np.ndarray  # float32 [L, 11] in the spec's order
    steps: np.ndarray  # int64 [L], each kept step's index in the RLDS episode
    extra: dict[str, Any]
    dropped_steps: dict[str, int]


def _values(example: dict[str, Any], spec: FeatureSpec, steps: int) -> Any:
    """The feature's values checked against its spec: an array [steps, *shape] or a list of `steps` bytes."""
    if spec.key not in example:
        raise BadRecord(f"missing feature {spec.key}")
    values = example[spec.key]
    if spec.kind in ("image", "text") or spec.dtype == "string":
        if not isinstance(values, list) or len(values) != steps:
            raise BadRecord(f"feature {spec.key} has {len(values)} entries for {steps} steps")
        return values
    values = np.asarray(values)
    if values.size != steps * spec.size:
        raise BadRecord(f"feature {spec.key} has {values.size} values, expected {steps} x {list(spec.shape)}")
    return values.reshape(steps, *spec.shape)


def decode_image(data: bytes, spec: FeatureSpec) -> np.ndarray:
    """One stored image -> HxWx3 uint8 RGB, decoded as TFDS decodes it (ValueError when it cannot be)."""
    try:
        if simplejpeg.is_jpeg(data):
            image = simplejpeg.decode_jpeg(data, colorspace="RGB", fastdct=True, fastupsample=False)
        else:
            with Image.open(io.BytesIO(data)) as png:
                image = np.asarray(png.convert("RGB"))
    except Exception as err:  # simplejpeg and Pillow raise many types for damaged data
        raise ValueError(f"{type(err).__name__}: {err}") from None
    known = [(have, want) for have, want in zip(image.shape, spec.shape, strict=False) if want > 0]
    if any(have != want for have, want in known):
        raise ValueError(f"decoded to {list(image.shape)}, features.json says {list(spec.shape)}")
    return image


def _text(value: bytes, what: str) -> str:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRecord(f"{what} is not UTF-8") from None


def _episode_extra(example: dict[str, Any], source: RldsSource) -> dict[str, Any]:
    """Small episode-level features (fractal's aspects and attributes) as JSON values."""
    extra: dict[str, Any] = {}
    for key, spec in source.specs.items():
        if key.startswith("steps/") or key not in example:
            continue
        values = example[key]
        if len(values) > MAX_EXTRA_VALUES:
            continue
        if isinstance(values, list):
            items = [v.decode("utf-8", "replace") for v in values]
        elif spec.dtype == "bool":
            items = [bool(v) for v in values]
        else:
            items = values.tolist()
        extra[key] = items[0] if spec.shape == () and len(items) == 1 else items
    return extra


def decode_episode(
    example: dict[str, Any],
    source: RldsSource,
    tokenizer: ActionTokenizer,
    frame_transform: Callable[[np.ndarray], np.ndarray],
    image_key: str = "image",
) -> RldsEpisode:
    """One parsed episode record -> its steps with RT-1 labels; raises BadRecord with the reason."""
    if IS_FIRST not in example:
        raise BadRecord(f"missing feature {IS_FIRST}")
    steps = len(example[IS_FIRST])
    if steps == 0:
        raise BadRecord("no steps")
    fields = {
        target: _values(example, source.specs[ACTION + name], steps).astype(np.float32)
        for name, (target, _) in RT1_ACTION_FIELDS.items()
        if target != "mode"
    }
    one_hot = _values(example, source.specs[ACTION + "terminate_episode"], steps)
    has_mode = ((one_hot == 0) | (one_hot == 1)).all(axis=1) & (one_hot.sum(axis=1) == 1)
    fields["mode"] = one_hot.argmax(axis=1).astype(np.float32)[:, None]
    values = np.concatenate([fields[dim.name] for dim in tokenizer.spec], axis=1)
    if not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise BadRecord(f"step {bad} has a non-finite action value")
    texts = {_text(t, "the instruction").strip() for t in _values(example, source.specs[INSTRUCTION], steps)}
    if len(texts) != 1:
        raise BadRecord(f"the instruction changes within the episode ({len(texts)} different)")
    instruction = texts.pop()
    if not instruction:
        raise BadRecord("empty instruction")
    embeddings = _values(example, source.specs[EMBEDDING], steps).astype(np.float32)
    if np.abs(embeddings - embeddings[0]).max() > EMBEDDING_TOLERANCE:
        raise BadRecord("the instruction embedding changes within the episode")
    kept = np.flatnonzero(has_mode)
    if len(kept) == 0:
        raise BadRecord(f"no step has a mode ({NOT_ONE_HOT})")
    image_spec = source.specs[f"steps/observation/{image_key}"]
    images = _values(example, image_spec, steps)
    frames = []
    for step in kept:
        try:
            frames.append(frame_transform(decode_image(images[step], image_spec)))
        except ValueError as err:
            raise BadRecord(f"{image_spec.key} of step {step} cannot be decoded: {err}") from None
    dropped = steps - len(kept)
    return RldsEpisode(
        instruction=instruction,
        embedding=embeddings[0],
        frames=np.stack(frames),
        tokens=tokenizer.encode({dim.name: values[kept, tokenizer.slices[dim.name]] for dim in tokenizer.spec}).astype(
            np.uint8
        ),
        actions=values[kept],
        steps=kept.astype(np.int64),
        extra=_episode_extra(example, source),
        dropped_steps={NOT_ONE_HOT: dropped} if dropped else {},
    )


def iter_episodes(
    source: RldsSource,
    tokenizer: ActionTokenizer,
    frame_transform: Callable[[np.ndarray], np.ndarray],
    image_key: str = "image",
) -> Iterator[tuple[str, RldsEpisode | None, str]]:
    """(where, episode, "") for every usable record of the source's shards, (where, None, reason) for the rest;
    `where` is `shard#record`."""
    for shard in source.shards:
        for record in read_records(shard):
            where = f"{shard}#{record.index}"
            if record.error:
                yield where, None, record.error
                continue
            try:
                episode = decode_episode(parse_example(record.data), source, tokenizer, frame_transform, image_key)
            except (ValueError, BadRecord) as err:
                yield where, None, str(err)
                continue
            yield where, episode, ""


def import_rlds(
    paths: Iterable[str | Path],
    out: str | Path,
    image_size: int,
    frame_transform: Callable[[np.ndarray], np.ndarray],
    tokenizer: ActionTokenizer | None = None,
    image_key: str = "image",
    fps: float = DEFAULT_FPS,
    text_encoder: str = RLDS_TEXT_ENCODER,
    max_episodes: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> DatasetIndex:
    """Imports every RLDS episode under `paths` into dataset directory `out` and returns its index.

    Raises RldsError when a dataset cannot be imported at all (its action space is not RT-1's, it has no
    features.json, ...) and ValueError when no record was usable; unusable records are listed in the index's
    `skipped` with their reason. `max_episodes` stops after that many imported episodes.
    """
    tokenizer = tokenizer or ActionTokenizer(rounding="floor")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    sources = find_sources(paths)
    for source in sources:
        source.check_rt1(image_key)
    out = Path(out)
    prepare_output(out, overwrite)
    period_ns = round(1e9 / fps)
    episodes: list[EpisodeEntry] = []
    skipped: list[SkippedEpisode] = []
    instructions: dict[tuple[str, bytes], int] = {}
    embeddings: list[np.ndarray] = []
    tokens, actions, stamps = [], [], []
    start = 0
    bar = tqdm(desc="episodes", unit="ep", disable=not progress)
    with NpyAppender(out / layout.FRAMES_FILE, (image_size, image_size, 3), np.uint8) as frames:
        for source in sources:
            for where, episode, reason in iter_episodes(source, tokenizer, frame_transform, image_key):
                if episode is None:
                    skipped.append(SkippedEpisode(where, reason))
                    continue
                if episode.frames.shape[1:] != (image_size, image_size, 3):
                    raise ValueError(f"frame transform gave {episode.frames.shape[1:]}, expected {image_size}")
                key = (episode.instruction, episode.embedding.tobytes())
                if key not in instructions:
                    instructions[key] = len(instructions)
                    embeddings.append(episode.embedding)
                frames.append(episode.frames)
                tokens.append(episode.tokens)
                actions.append(episode.actions)
                stamps.append(np.repeat(episode.steps[:, None] * period_ns, 2, axis=1))
                episodes.append(
                    EpisodeEntry(
                        name=f"{source.name}:{Path(where).name}",
                        source=where,
                        instruction_id=instructions[key],
                        start=start,
                        length=len(episode.tokens),
                        extra={"rlds_dataset": f"{source.name}/{source.version}", **episode.extra},
                        dropped_steps=episode.dropped_steps,
                    )
                )
                start += len(episode.tokens)
                bar.update(1)
                if max_episodes is not None and len(episodes) >= max_episodes:
                    break
            if max_episodes is not None and len(episodes) >= max_episodes:
                break
    bar.close()
    if not episodes:
        reasons = "\n".join(f"  {s.source}: {s.reason}" for s in skipped)
        raise ValueError(f"no usable episode in the given shards:\n{reasons}")
    texts = [text for text, _ in instructions]
    return finish_dataset(
        out,
        image_size,
        tokenizer,
        texts,
        np.stack(embeddings),
        text_encoder,
        episodes,
        skipped,
        tokens,
        actions,
        stamps,
    )

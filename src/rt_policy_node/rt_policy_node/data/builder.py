"""Recorded episodes (rosbag2 directories) -> a training dataset directory (layout in data/dataset.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rt_policy_node.data import dataset as layout
from rt_policy_node.data.action_stats import action_statistics, plot_action_histograms
from rt_policy_node.data.bag_io import EPISODE_FILE, METADATA_FILE, OPEN_EPISODE_FILE
from rt_policy_node.data.dataset import DatasetIndex, EpisodeEntry, SkippedEpisode
from rt_policy_node.data.episode_reader import (
    DEFAULT_TOPICS,
    BadEpisode,
    EpisodeTopics,
    read_episode,
    read_sidecar,
)
from rt_policy_node.data.npy_writer import NpyAppender
from rt_policy_node.policies.action_tokenizer import ActionTokenizer, spec_to_json
from rt_policy_node.policies.text import TextEncoder


def _is_episode(path: Path) -> bool:
    # A bag cut short lacks metadata.yaml; it is still an episode (to be reported, not overlooked).
    markers = (METADATA_FILE, EPISODE_FILE, OPEN_EPISODE_FILE)
    return any((path / name).is_file() for name in markers) or any(path.glob("*.mcap"))


def find_episodes(paths: Iterable[str | Path]) -> tuple[list[Path], list[SkippedEpisode]]:
    """Episode directories named by `paths` (an episode itself or any folder above episodes), sorted,
    and the paths that held none."""
    found: list[Path] = []
    missing = []
    for path in map(Path, paths):
        if not path.exists():
            missing.append(SkippedEpisode(str(path), "path does not exist"))
        elif path.is_dir() and _is_episode(path):
            found.append(path)
        else:
            below = sorted(d for d in path.rglob("*") if d.is_dir() and _is_episode(d)) if path.is_dir() else []
            found.extend(below)
            if not below:
                missing.append(SkippedEpisode(str(path), "no rosbag2 episode found"))
    return sorted(set(found)), missing


def _encoder_name(encoder: TextEncoder) -> str:
    return getattr(encoder, "name", type(encoder).__name__)


def build_dataset(
    paths: Iterable[str | Path],
    out: str | Path,
    image_size: int,
    frame_transform: Callable[[np.ndarray], np.ndarray],
    text_encoder: TextEncoder,
    tokenizer: ActionTokenizer | None = None,
    topics: EpisodeTopics = DEFAULT_TOPICS,
    include_failed: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> DatasetIndex:
    """Reads every episode under `paths` into dataset directory `out` and returns its index.

    `frame_transform` turns each chosen HxWx3 uint8 RGB frame into the stored `image_size` square frame.
    Unusable episodes, and expert demonstrations marked failed (unless `include_failed`; episodes a policy
    drove keep the expert's labels and stay), are listed in the index's `skipped` with the reason. Raises
    ValueError when no episode is usable.
    """
    tokenizer = tokenizer or ActionTokenizer()
    out = Path(out)
    prepare_output(out, overwrite)
    episode_dirs, skipped = find_episodes(paths)
    episodes: list[EpisodeEntry] = []
    instructions: dict[str, int] = {}
    tokens, actions, stamps = [], [], []
    start = 0
    with NpyAppender(out / layout.FRAMES_FILE, (image_size, image_size, 3), np.uint8) as frames:
        for path in tqdm(episode_dirs, desc="episodes", unit="ep", disable=not progress):
            try:
                sidecar = read_sidecar(path)
                # A policy-driven episode (DAgger, extra.driven_by) has the expert's labels even where it failed.
                failed = sidecar and sidecar.extra.get("expert_success") is False and not sidecar.extra.get("driven_by")
                if failed and not include_failed:
                    raise BadEpisode(
                        "expert demonstration failed (extra.expert_success is false; see --include-failed)"
                    )
                steps = read_episode(path, tokenizer, frame_transform, topics)
                if steps.frames.shape[1:] != (image_size, image_size, 3):
                    raise BadEpisode(
                        f"frame transform gave {steps.frames.shape[1:]}, expected {image_size}x{image_size}"
                    )
            except BadEpisode as err:
                skipped.append(SkippedEpisode(str(path), str(err)))
                continue
            frames.append(steps.frames)
            tokens.append(steps.tokens)
            actions.append(steps.actions)
            stamps.append(steps.stamps)
            episodes.append(
                EpisodeEntry(
                    name=path.name,
                    source=str(path),
                    instruction_id=instructions.setdefault(steps.instruction, len(instructions)),
                    start=start,
                    length=len(steps.tokens),
                    outcome=steps.outcome,
                    extra=steps.extra,
                    dropped_steps=steps.dropped_steps,
                )
            )
            start += len(steps.tokens)
    if not episodes:
        reasons = "\n".join(f"  {s.source}: {s.reason}" for s in skipped)
        raise ValueError(f"no usable episode in the given paths:\n{reasons}")
    texts = list(instructions)
    embeddings = np.stack([text_encoder.embed(t) for t in texts])
    return finish_dataset(
        out,
        image_size,
        tokenizer,
        texts,
        embeddings,
        _encoder_name(text_encoder),
        episodes,
        skipped,
        tokens,
        actions,
        stamps,
    )


def finish_dataset(
    out: Path,
    image_size: int,
    tokenizer: ActionTokenizer,
    instructions: list[str],
    embeddings: np.ndarray,
    text_encoder: str,
    episodes: list[EpisodeEntry],
    skipped: list[SkippedEpisode],
    tokens: list[np.ndarray],
    actions: list[np.ndarray],
    stamps: list[np.ndarray],
) -> DatasetIndex:
    """Writes everything but the frames (already in `out`, in episode order): per-episode tokens, actions and
    stamps, one embedding per instruction, the histograms, and last the index, which marks the build finished."""
    all_actions = np.concatenate(actions)
    np.save(out / layout.TOKENS_FILE, np.concatenate(tokens))
    np.save(out / layout.ACTIONS_FILE, all_actions)
    np.save(out / layout.STAMPS_FILE, np.concatenate(stamps))
    np.save(out / layout.EMBEDDINGS_FILE, np.asarray(embeddings, np.float32))
    plot_action_histograms(all_actions, tokenizer.spec, out / layout.HISTOGRAM_FILE)
    index = DatasetIndex(
        image_size=(image_size, image_size),
        action_spec=spec_to_json(tokenizer.spec),
        rounding=tokenizer.rounding,
        instructions=instructions,
        text_encoder=text_encoder,
        episodes=episodes,
        skipped=skipped,
        action_stats=action_statistics(all_actions, tokenizer.spec),
    )
    index.save(out)
    return index


def prepare_output(out: Path, overwrite: bool) -> None:
    """Creates `out`; an existing dataset there is replaced only with `overwrite` (its own files only)."""
    out.mkdir(parents=True, exist_ok=True)
    present = [name for name in layout.DATASET_FILES if (out / name).exists()]
    if present and not overwrite:
        raise FileExistsError(f"{out} already holds a dataset ({', '.join(present)}); pass --overwrite to replace it")
    for name in present:
        (out / name).unlink()

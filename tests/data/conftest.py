"""Episode bags written through the recorder's own EpisodeWriter, and a dataset built from them."""

from pathlib import Path

import pytest
import torch
from dataset_helpers import FRAME, CountingEncoder, identity_frame

from rt_policy_node.data.builder import build_dataset
from rt_policy_node.data.synthetic import project_typestore, write_synthetic_episode
from rt_policy_node.policies.action_tokenizer import ActionTokenizer


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """`rt-dataset build` sets torch's thread count for its process; run in-process, it must not leak."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def typestore():
    return project_typestore()


@pytest.fixture(scope="session")
def good_episodes(tmp_path_factory, typestore) -> list[Path]:
    """Three clean episodes: rgb8, bgr8, and one whose source sent tokens; two share an instruction."""
    root = tmp_path_factory.mktemp("bags")
    specs = [
        dict(colour="red", steps=7, seed=1),
        dict(colour="blue", steps=5, seed=2, encoding="bgr8"),
        dict(colour="red", steps=9, seed=3, tokenized=True),
    ]
    paths = []
    for i, spec in enumerate(specs):
        path = root / f"episode_20250101-000000_{i:04d}"
        write_synthetic_episode(path, typestore, frame_size=(FRAME, FRAME), **spec)
        paths.append(path)
    return paths


@pytest.fixture(scope="session")
def built(tmp_path_factory, good_episodes):
    """The three good episodes built with floor-rounded labels (tokenised sources keep their own)."""
    out = tmp_path_factory.mktemp("dataset")
    encoder = CountingEncoder()
    index = build_dataset(
        [good_episodes[0].parent],
        out,
        FRAME,
        identity_frame,
        encoder,
        ActionTokenizer(rounding="floor"),
        progress=False,
    )
    return out, index, encoder

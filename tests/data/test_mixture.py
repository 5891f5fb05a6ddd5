"""Mixtures of stored datasets for training: weighted, seeded, resumable batches over several window datasets."""

import dataclasses
import json
import pickle

import numpy as np
import pytest
from dataset_helpers import FRACTAL, FRAME, CountingEncoder

from rt_policy_node.data.builder import build_dataset
from rt_policy_node.data.cli import main as rt_dataset
from rt_policy_node.data.cli import resize_frame
from rt_policy_node.data.dataset import StoredDataset
from rt_policy_node.data.mixture import (
    MixtureDataset,
    MixtureSource,
    ResizedDataset,
    WeightedBatchSampler,
    batch_shares,
    make_mixture_loader,
    open_sources,
    parse_sources,
)
from rt_policy_node.data.rlds import import_rlds
from rt_policy_node.data.windows import WindowDataset
from rt_policy_node.policies.action_tokenizer import RT1_ACTION_SPEC, ActionDim, ActionTokenizer
from rt_policy_node.policies.rt1.config import rt1_preset

SMALL = 24


@pytest.fixture(scope="module")
def small(tmp_path_factory, good_episodes):
    """One of the bags built at another frame size, with the same encoder as `built`."""
    out = tmp_path_factory.mktemp("small")
    build_dataset(
        [good_episodes[1]],
        out,
        SMALL,
        lambda f: resize_frame(f, SMALL),
        CountingEncoder(),
        ActionTokenizer(rounding="floor"),
        progress=False,
    )
    return out


def test_sources_parse_as_path_and_weight():
    sources = parse_sources(["datasets/fractal:0.5", "datasets/mine:1.5", "odd:name"])
    assert sources == [
        MixtureSource("datasets/fractal", 0.5 / 3),
        MixtureSource("datasets/mine", 1.5 / 3),
        MixtureSource("odd:name", 1 / 3),
    ]
    for bad in ("a:0", "a:-1", "a:nan"):
        with pytest.raises(ValueError, match="weight must be a positive number"):
            parse_sources([bad])
    with pytest.raises(ValueError, match="no datasets"):
        parse_sources([])


@pytest.mark.parametrize(("weights", "batch_size"), [((0.3, 0.7), 8), ((1, 1, 1), 4), ((0.05, 0.95), 16), ((1,), 5)])
def test_every_run_of_batches_keeps_the_weights_within_one_sample(weights, batch_size):
    shares = batch_shares(weights, batch_size, 200)
    assert (shares.sum(axis=1) == batch_size).all() and (shares >= 0).all()
    drawn = np.cumsum(shares, axis=0)
    wanted = np.outer(np.arange(1, 201) * batch_size, np.asarray(weights) / np.sum(weights))
    assert np.abs(drawn - wanted).max() < 1


def test_batches_split_between_sources_by_weight_and_cover_each_source(built, small):
    parts = [WindowDataset(built[0], 6), WindowDataset(small, 6)]
    mixture = MixtureDataset(parts, [0.25, 0.75], names=["built", "small"])
    sampler = WeightedBatchSampler.for_dataset(mixture, 4, seed=3)
    batches = list(sampler)
    assert len(batches) == len(sampler) == sampler.num_samples // 4 == -(-(len(parts[0]) + len(parts[1])) // 4)
    first = len(parts[0])
    for batch in batches:
        assert len(batch) == 4 and sum(i < first for i in batch) == 1
    drawn_small = [i - first for batch in batches for i in batch if i >= first]
    # The small source is drawn more often than it has windows: every window, then a reshuffled repeat.
    assert set(drawn_small) == set(range(len(parts[1])))
    assert sorted(drawn_small[: len(parts[1])]) == list(range(len(parts[1])))


def test_order_depends_on_seed_and_epoch_only_and_resumes_exactly(built, small):
    lengths, weights = [21, 5], [0.5, 0.5]
    sampler = WeightedBatchSampler(lengths, weights, 4, seed=7)
    sampler.set_epoch(2)
    full = list(sampler)
    again = WeightedBatchSampler(lengths, weights, 4, seed=7)
    again.set_epoch(2, skip=3 * 4)
    assert list(again) == full[3:] and len(again) == len(full) - 3
    again.set_epoch(3)
    assert list(again) != full
    with pytest.raises(ValueError, match="whole number of batches"):
        again.set_epoch(0, skip=3)


def test_ranks_take_alternate_batches(built, small):
    lengths, weights = [21, 5], [0.4, 0.6]
    alone = list(WeightedBatchSampler(lengths, weights, 2, seed=1, samples_per_epoch=24))
    ranks = [
        list(WeightedBatchSampler(lengths, weights, 2, seed=1, rank=r, world_size=2, samples_per_epoch=24))
        for r in (0, 1)
    ]
    assert ranks[0] == alone[0::2] and ranks[1] == alone[1::2]


def test_the_loader_yields_windows_of_one_size_from_datasets_of_two(built, small):
    sources = parse_sources([f"{built[0]}:0.5", f"{small}:0.5"])
    stored = open_sources(sources, image_size=FRAME)
    assert isinstance(stored[1], ResizedDataset) and not isinstance(stored[0], ResizedDataset)
    mixture = MixtureDataset([WindowDataset(d, 6, seed=i) for i, d in enumerate(stored)], [s.weight for s in sources])
    loader, sampler = make_mixture_loader(mixture, batch_size=4, seed=0)
    sampler.set_epoch(0)
    mixture.set_epoch(0)
    batches = list(loader)
    assert len(batches) == len(sampler)
    assert all(b["images"].shape == (4, 6, FRAME, FRAME, 3) and b["action_tokens"].shape == (4, 6, 11) for b in batches)


def test_a_resized_dataset_serves_the_models_resize_of_its_frames(small):
    resized = ResizedDataset(small, FRAME)
    stored = StoredDataset(small)
    assert resized.index.image_size == (FRAME, FRAME) and resized.stored_size == (SMALL, SMALL)
    assert resized.frames.shape == (len(stored), FRAME, FRAME, 3)
    np.testing.assert_array_equal(resized.frames[2], resize_frame(stored.frames[2], FRAME))
    np.testing.assert_array_equal(resized.frames[1:3][1], resized.frames[2])
    copy = pickle.loads(pickle.dumps(resized))  # as a spawned loader worker receives it
    assert copy.frames.shape == resized.frames.shape


def test_mixtures_that_cannot_be_trained_on_are_refused(tmp_path, built, small):
    with pytest.raises(ValueError, match="different frame sizes"):
        open_sources([MixtureSource(str(built[0])), MixtureSource(str(small))])
    fractal = tmp_path / "fractal"
    import_rlds([FRACTAL], fractal, FRAME, lambda f: resize_frame(f, FRAME), progress=False)
    mixed = [MixtureSource(str(built[0])), MixtureSource(str(fractal))]
    with pytest.raises(ValueError, match=r"embeds instructions with use-large-v5, .* with counting-use"):
        open_sources(mixed)
    assert len(open_sources(mixed, allow_mixed_text_encoders=True)) == 2
    other_spec = (*RT1_ACTION_SPEC[:-1], ActionDim("base_displacement", 2, -2.0, 2.0))
    with pytest.raises(ValueError, match="action spec differs"):
        open_sources([MixtureSource(str(built[0]))], action_spec=other_spec)
    with pytest.raises(ValueError, match="empty datasets"):
        MixtureDataset([WindowDataset(built[0], 6), []], [1, 1], names=["built", "nothing"])


def test_different_label_rounding_is_a_warning(tmp_path, built, good_episodes):
    rounded = tmp_path / "rounded"
    build_dataset(
        [good_episodes[0]],
        rounded,
        FRAME,
        np.array,
        CountingEncoder(),
        ActionTokenizer(rounding="round"),
        progress=False,
    )
    with pytest.warns(UserWarning, match="'round' rounding"):
        open_sources([MixtureSource(str(built[0])), MixtureSource(str(rounded))])


def test_bags_built_with_large_v5_embeddings_mix_with_an_imported_rlds_dataset(tmp_path, good_episodes):
    """docs/how-to/datasets.md's worked example in small: the model's config for size and labels, one text encoder."""
    config = dataclasses.replace(rt1_preset("rt1_reference"), image_size=FRAME)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config.to_dict()))
    texts = ["move to the red square", "move to the blue square"]
    vectors = np.random.default_rng(0).normal(size=(2, 512)).astype(np.float32)
    np.savez(tmp_path / "use_large_v5.npz", instructions=np.array(texts), embeddings=vectors)
    mine, fractal = tmp_path / "mine", tmp_path / "fractal"
    build = ["build", str(good_episodes[0].parent), "--out", str(mine), "--model-config", str(config_path)]
    assert rt_dataset([*build, "--text-embeddings", str(tmp_path / "use_large_v5.npz")]) == 0
    rlds = ["import-rlds", str(FRACTAL), "--out", str(fractal), "--model-config", str(config_path)]
    assert rt_dataset(rlds) == 0
    stored = open_sources(parse_sources([f"{fractal}:0.5", f"{mine}:0.5"]), image_size=FRAME)
    assert [d.index.text_encoder for d in stored] == ["use-large-v5", "use-large-v5"]
    assert [d.index.rounding for d in stored] == ["floor", "floor"]
    index = stored[1].index
    np.testing.assert_array_equal(stored[1].embeddings, vectors[[texts.index(t) for t in index.instructions]])

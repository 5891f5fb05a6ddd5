"""Training windows: alignment with the episode and its stamps, left-aligned padding, sharding, resume."""

import numpy as np
import pytest
import torch

from rt_policy_node.data.dataset import StoredDataset
from rt_policy_node.data.windows import ResumableSampler, WindowDataset, make_loader
from rt_policy_node.policies.rt1.image import augment

WINDOW = 6


@pytest.fixture(scope="module")
def data(built):
    return StoredDataset(built[0])


def test_each_window_ends_at_its_step_and_stays_inside_its_episode(data):
    windows = WindowDataset(data, WINDOW)
    assert len(windows) == len(data)
    stamps = np.asarray(data.stamps)
    for episode in data.index.episodes:
        for offset in range(episode.length):
            i = episode.start + offset
            item = windows[i]
            n = min(offset + 1, WINDOW)
            steps = np.arange(i - n + 1, i + 1)
            assert item["step_mask"].tolist() == [True] * n + [False] * (WINDOW - n)
            # Real steps are left-aligned: slot 0 is the episode's first step until the window is full,
            # exactly the slots the streaming policy has filled when it acts at this step.
            assert steps[0] == max(episode.start, i - WINDOW + 1)
            np.testing.assert_array_equal(item["images"][:n].numpy(), data.frames[steps])
            np.testing.assert_array_equal(item["action_tokens"][:n].numpy(), data.tokens[steps])
            assert (item["action_tokens"][n:] == 0).all()
            assert (item["images"][n:] == item["images"][n - 1]).all()
            np.testing.assert_array_equal(item["text_embedding"].numpy(), data.embeddings[episode.instruction_id])
            # In time order, and each observation taken at or before its action.
            assert np.all(np.diff(stamps[steps, 0]) > 0)
            assert np.all(stamps[steps, 1] <= stamps[steps, 0])
    assert item["images"].dtype == torch.uint8 and item["action_tokens"].dtype == torch.int64


def _translate(frame, dy, dx):
    """`frame` moved by (dy, dx) pixels, zero where nothing moved in: what pad-then-crop makes."""
    out = np.zeros_like(frame)
    h, w = frame.shape[:2]
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = frame[
        max(-dy, 0) : h - max(dy, 0), max(-dx, 0) : w - max(dx, 0)
    ]
    return out


def _shifts(augmented, original):
    return {
        (dy, dx)
        for dy in range(-4, 5)
        for dx in range(-7, 8)
        if np.array_equal(augmented, _translate(original, dy, dx))
    }


def test_augmentation_shifts_a_window_as_one_and_repeats_for_the_same_epoch(data):
    def shift(window, generator):
        return augment(window[None], "pad_then_crop", 0, generator)[0]

    windows = WindowDataset(data, WINDOW, augment=shift, seed=3)
    original = WindowDataset(data, WINDOW)[data.index.episodes[0].start + WINDOW]["images"].numpy()
    index = data.index.episodes[0].start + WINDOW
    assert torch.equal(windows[index]["images"], windows[index]["images"])
    draws = set()
    for epoch in range(6):
        windows.set_epoch(epoch)
        images = windows[index]["images"].numpy()
        # One crop for the whole window: every frame moved by the same offset.
        per_frame = [_shifts(a, o) for a, o in zip(images, original, strict=True)]
        assert len(per_frame[0]) == 1 and all(s == per_frame[0] for s in per_frame)
        draws |= per_frame[0]
    assert len(draws) > 1


def test_ranks_get_disjoint_shards_and_a_resumed_epoch_continues_the_same_order(data):
    windows = WindowDataset(data, WINDOW)
    shards = []
    for rank in range(2):
        sampler = ResumableSampler(windows, num_replicas=2, rank=rank, seed=1)
        sampler.set_epoch(4)
        shards.append(list(sampler))
    assert not set(shards[0]) & set(shards[1])
    assert len(shards[0]) == len(shards[1]) == len(windows) // 2

    sampler = ResumableSampler(windows, seed=1)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_epoch(2, skip=8)
    assert list(sampler) == full[8:] and len(sampler) == len(full) - 8
    sampler.set_epoch(3)
    assert list(sampler) != full


def test_loader_batches_full_windows_from_worker_processes(data):
    loader, sampler = make_loader(WindowDataset(data, WINDOW), batch_size=4, num_workers=2, seed=0)
    sampler.set_epoch(0)
    batches = list(loader)
    assert len(batches) == len(data) // 4
    batch = batches[0]
    assert batch["images"].shape == (4, WINDOW, *data.frames.shape[1:])
    assert batch["text_embedding"].shape == (4, 512)
    assert batch["action_tokens"].shape == (4, WINDOW, 11)
    assert batch["step_mask"].dtype == torch.bool


def test_instruction_variants_replace_the_embedding_with_their_probability(data):
    dim = data.embeddings.shape[1]
    variants = [np.full((3, dim), 10.0 + i, np.float32) + np.arange(3)[:, None] for i in range(len(data.embeddings))]
    always = WindowDataset(data, WINDOW, instruction_variants=variants, variant_prob=1.0, seed=5)
    never = WindowDataset(data, WINDOW, instruction_variants=variants, variant_prob=0.0, seed=5)
    half = WindowDataset(data, WINDOW, instruction_variants=variants, variant_prob=0.5, seed=5)
    chosen = []
    for i in range(len(data)):
        owner = always.instruction_id[i]
        embedding = always[i]["text_embedding"].numpy()
        assert any(np.array_equal(embedding, v) for v in variants[owner]), "a variant of the window's own instruction"
        chosen.append(float(embedding[0]) - 10.0 - owner)
        np.testing.assert_array_equal(never[i]["text_embedding"].numpy(), data.embeddings[owner])
        np.testing.assert_array_equal(half[i]["text_embedding"].numpy(), half[i]["text_embedding"].numpy())
    assert set(chosen) == {0.0, 1.0, 2.0}
    first_epoch = [half[i]["text_embedding"].numpy() for i in range(len(data))]
    assert 0.25 < np.mean([e[0] >= 10.0 for e in first_epoch]) < 0.75
    half.set_epoch(1)
    assert any(not np.array_equal(half[i]["text_embedding"].numpy(), e) for i, e in enumerate(first_epoch))
    with pytest.raises(ValueError, match="entries"):
        WindowDataset(data, WINDOW, instruction_variants=variants[:-1], variant_prob=0.5)

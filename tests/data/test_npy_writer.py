"""A .npy written block by block reads back whole, memory-mapped."""

import numpy as np
import pytest

from rt_policy_node.data.npy_writer import NpyAppender


def test_blocks_append_into_one_memory_mappable_array(tmp_path):
    rng = np.random.default_rng(0)
    blocks = [rng.integers(0, 255, (n, 4, 5, 3), dtype=np.uint8) for n in (3, 0, 7, 1)]
    with NpyAppender(tmp_path / "a.npy", (4, 5, 3), np.uint8) as out:
        for block in blocks:
            out.append(block)
    loaded = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert isinstance(loaded, np.memmap)
    np.testing.assert_array_equal(loaded, np.concatenate(blocks))


def test_an_empty_array_is_valid(tmp_path):
    NpyAppender(tmp_path / "e.npy", (2,), np.float32).close()
    assert np.load(tmp_path / "e.npy").shape == (0, 2)


def test_rows_of_another_shape_or_dtype_are_refused(tmp_path):
    with NpyAppender(tmp_path / "a.npy", (2, 2), np.uint8) as out:
        with pytest.raises(ValueError, match="expected rows"):
            out.append(np.zeros((1, 2, 3), np.uint8))
        with pytest.raises(ValueError, match="expected rows"):
            out.append(np.zeros((1, 2, 2), np.float32))

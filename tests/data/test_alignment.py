"""Frame choice for each action: the newest frame stamped at or before it, in one streaming pass."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rt_policy_node.data.alignment import NewestFrameSelector

stamps = st.lists(st.integers(0, 50), max_size=30)


@settings(max_examples=200, deadline=None)
@given(frame_stamps=stamps, action_stamps=stamps)
def test_selector_matches_brute_force_for_frames_in_any_order(frame_stamps, action_stamps):
    selector = NewestFrameSelector(np.sort(action_stamps))
    for i, stamp in enumerate(frame_stamps):
        selector.offer(stamp, i)
    for a, chosen_stamp, chosen in zip(selector.action_stamps, selector.frame_stamps, selector.frames, strict=True):
        earlier = [(s, i) for i, s in enumerate(frame_stamps) if s <= a]
        if not earlier:
            assert chosen is None
            continue
        newest = max(s for s, _ in earlier)
        assert chosen_stamp == newest <= a
        # Of frames sharing the newest stamp, the first offered is kept.
        assert chosen == min(i for s, i in earlier if s == newest)
    assert selector.has_frame.tolist() == [f is not None for f in selector.frames]


def test_a_frame_at_the_action_stamp_counts_and_a_later_one_never_does():
    selector = NewestFrameSelector(np.array([100, 200]))
    selector.offer(201, "late")
    selector.offer(100, "exact")
    selector.offer(150, "between")
    assert selector.frames == ["exact", "between"]


def test_unsorted_action_stamps_are_refused():
    with pytest.raises(ValueError, match="sorted"):
        NewestFrameSelector(np.array([2, 1]))

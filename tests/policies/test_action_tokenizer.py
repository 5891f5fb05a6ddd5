"""The shared action tokenizer: bins, bounds, the mode token, numpy and torch alike."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rt_policy_node.policies.action_tokenizer import RT1_ACTION_SPEC, ActionTokenizer
from rt_policy_node.policies.policy import Action, Mode

TOKENIZER = ActionTokenizer()
CONTINUOUS = [d for d in RT1_ACTION_SPEC if not d.discrete]


def action_strategy():
    fields = {d.name: arrays(np.float32, d.size, elements=st.floats(d.low, d.high, width=32)) for d in CONTINUOUS}
    fields["mode"] = st.integers(0, 2).map(lambda m: np.array([m], np.float32))
    return st.fixed_dictionaries(fields)


def test_eleven_tokens_in_reference_order():
    assert TOKENIZER.num_tokens == 11
    assert [d.name for d in RT1_ACTION_SPEC] == [
        "mode",
        "world_vector",
        "rotation_delta",
        "gripper_closedness",
        "base_rotation",
        "base_displacement",
    ]


@settings(max_examples=300, deadline=None)
@given(action_strategy())
def test_round_trip_within_half_a_bin(action):
    tokens = TOKENIZER.encode(action)
    assert tokens.shape == (11,) and tokens.min() >= 0 and tokens.max() <= 255
    decoded = TOKENIZER.decode(tokens)
    assert decoded["mode"] == action["mode"][0]
    for dim in CONTINUOUS:
        err = np.abs(decoded[dim.name] - action[dim.name]).max()
        assert err <= TOKENIZER.bin_width(dim.name) / 2 + 1e-6, dim.name


@settings(max_examples=100, deadline=None)
@given(action_strategy())
def test_torch_and_numpy_agree(action):
    np_tokens = TOKENIZER.encode(action)
    torch_tokens = TOKENIZER.encode({k: torch.from_numpy(v) for k, v in action.items()})
    np.testing.assert_array_equal(torch_tokens.numpy(), np_tokens)
    for name, value in TOKENIZER.decode(torch_tokens).items():
        np.testing.assert_allclose(value.numpy(), TOKENIZER.decode(np_tokens)[name], atol=1e-6)


def test_out_of_range_values_are_clipped_to_the_end_bins():
    action = {d.name: np.full(d.size, 10.0) for d in CONTINUOUS} | {"mode": np.array([7.0])}
    tokens = TOKENIZER.encode(action)
    assert tokens[0] == 2 and (tokens[1:] == 255).all()
    low = {d.name: np.full(d.size, -10.0) for d in CONTINUOUS} | {"mode": np.array([-1.0])}
    assert (TOKENIZER.encode(low) == 0).all()


def test_floor_rounding_truncates_like_the_reference():
    floor = ActionTokenizer(rounding="floor")
    action = {d.name: np.full(d.size, d.low + (d.high - d.low) * 0.999 / 255) for d in CONTINUOUS}
    action["mode"] = np.array([1.0])
    assert (floor.encode(action)[1:] == 0).all()
    assert (TOKENIZER.encode(action)[1:] == 1).all()


def test_invalid_mode_token_decodes_to_terminate_and_mask_forbids_it():
    tokens = np.zeros(11, np.int64)
    tokens[0] = 200
    assert TOKENIZER.decode(tokens)["mode"] == 0
    mask = TOKENIZER.valid_token_mask()
    assert mask[0].sum() == 3 and mask[1:].all()


def test_batched_shapes():
    batch = {d.name: np.zeros((4, 6, d.size)) for d in CONTINUOUS} | {"mode": np.ones((4, 6))}
    tokens = TOKENIZER.encode(batch)
    assert tokens.shape == (4, 6, 11)
    assert TOKENIZER.decode(tokens)["world_vector"].shape == (4, 6, 3)


def test_action_from_tokens_round_trip():
    action = Action(world_vector=np.array([0.5, 0, -0.5]), gripper_closedness=1.0, mode=Mode.ARM)
    tokens = TOKENIZER.encode(action.as_dict())
    back = Action.from_tokens(tokens, TOKENIZER)
    assert back.mode is Mode.ARM
    np.testing.assert_allclose(back.world_vector, action.world_vector, atol=TOKENIZER.bin_width("world_vector"))
    assert back.gripper_closedness == pytest.approx(1.0)
    np.testing.assert_array_equal(back.tokens, tokens)

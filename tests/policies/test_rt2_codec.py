"""RT-2's action codec: bins <-> vocabulary ids for both strategies, on ids only, exact to the bin."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rt_policy_node.policies.action_tokenizer import RT1_ACTION_SPEC, ActionTokenizer
from rt_policy_node.policies.rt2.codec import ActionTextCodec
from rt_policy_node.policies.rt2.presets import default_corpus, train_tokenizer

TOKENIZER = ActionTokenizer()
CORPUS = default_corpus()
NUMBERS = train_tokenizer(CORPUS, "idefics3", 1024)
DIGITS = train_tokenizer(CORPUS, "idefics3", 1024, split_digits=True)
CODECS = {
    "integers": ActionTextCodec.integers(NUMBERS),
    "least_frequent": ActionTextCodec.least_frequent(DIGITS, CORPUS),
}


def action_strategy():
    fields = {
        d.name: arrays(np.float32, d.size, elements=st.floats(d.low, d.high, width=32))
        for d in RT1_ACTION_SPEC
        if not d.discrete
    }
    fields["mode"] = st.integers(0, 2).map(lambda m: np.array([m], np.float32))
    return st.fixed_dictionaries(fields)


@settings(max_examples=200, deadline=None)
@given(action=action_strategy(), strategy=st.sampled_from(sorted(CODECS)))
def test_action_to_ids_to_action_is_exact_to_the_bin(action, strategy):
    codec = CODECS[strategy]
    tokens = TOKENIZER.encode(action)
    ids = codec.encode(tokens)
    assert ids.shape == (11,) and set(ids.tolist()) <= set(codec.ids.tolist())
    np.testing.assert_array_equal(codec.decode(ids), tokens)
    for name, value in TOKENIZER.decode(codec.decode(ids)).items():
        np.testing.assert_array_equal(value, TOKENIZER.decode(tokens)[name])


@settings(max_examples=100, deadline=None)
@given(data=st.data(), strategy=st.sampled_from(sorted(CODECS)))
def test_every_admitted_id_sequence_round_trips(data, strategy):
    codec = CODECS[strategy]
    mask = codec.allowed_mask(4096).numpy()
    ids = np.array([data.draw(st.sampled_from(np.flatnonzero(row).tolist())) for row in mask])
    np.testing.assert_array_equal(codec.encode(codec.decode(ids)), ids)


def test_integers_uses_the_vocabulary_number_tokens_and_matches_the_text():
    codec = CODECS["integers"]
    assert [NUMBERS.decode([i]) for i in codec.ids[[0, 7, 128, 255]]] == [" 0", " 7", " 128", " 255"]
    tokens = np.array([1, 128, 91, 241, 5, 101, 127, 217, 0, 255, 33])
    assert codec.text(tokens) == "1 128 91 241 5 101 127 217 0 255 33"
    assert NUMBERS(" " + codec.text(tokens), add_special_tokens=False)["input_ids"] == codec.encode(tokens).tolist()


def test_integers_refuses_a_tokenizer_that_splits_numbers_into_digits():
    with pytest.raises(ValueError, match="least_frequent"):
        ActionTextCodec.integers(DIGITS)


def test_least_frequent_picks_rare_ordinary_tokens_even_if_they_decode_to_odd_unicode():
    codec = CODECS["least_frequent"]
    counts = np.zeros(len(DIGITS), np.int64)
    for text in CORPUS:
        np.add.at(counts, DIGITS(text, add_special_tokens=False)["input_ids"], 1)
    special = set(DIGITS.all_special_ids) | set(DIGITS.added_tokens_decoder)
    assert not special & set(codec.ids.tolist())
    ordinary = [i for i in range(len(DIGITS)) if i not in special]
    unused = [i for i in ordinary if i not in set(codec.ids.tolist())]
    assert counts[codec.ids].max() <= counts[unused].min()
    decoded = [DIGITS.decode([i]) for i in codec.ids]
    assert any("\ufffd" in text or not text.isprintable() for text in decoded)


def test_least_frequent_respects_exclusions_and_the_model_vocabulary():
    banned = CODECS["least_frequent"].ids[:10].tolist()
    codec = ActionTextCodec.least_frequent(DIGITS, CORPUS, vocab_limit=len(DIGITS) - 5, exclude=banned)
    assert not set(banned) & set(codec.ids.tolist())
    assert codec.ids.max() < len(DIGITS) - 5


def test_the_mode_position_admits_exactly_three_ids():
    for codec in CODECS.values():
        mask = codec.allowed_mask(2048)
        assert mask.shape == (11, 2048)
        assert mask[0].sum() == 3 and mask[0, codec.ids[:3]].all()
        assert (mask[1:].sum(-1) == 256).all()


def test_ids_that_are_not_a_valid_action_are_rejected():
    codec = CODECS["integers"]
    tokens = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    ids = codec.encode(tokens)
    bad_mode = ids.copy()
    bad_mode[0] = codec.ids[200]
    with pytest.raises(ValueError, match="not a valid action"):
        codec.decode(bad_mode)
    not_an_action = ids.copy()
    not_an_action[4] = NUMBERS.eos_token_id
    with pytest.raises(ValueError, match="not a valid action"):
        codec.decode(not_an_action)
    with pytest.raises(ValueError, match="11 values"):
        codec.decode(ids[:5])
    with pytest.raises(ValueError, match="out of range"):
        codec.encode(np.array([3, *tokens[1:]]))


def test_json_round_trip_and_bad_tables():
    for codec in CODECS.values():
        again = ActionTextCodec.from_json(codec.to_json())
        assert again.strategy == codec.strategy
        np.testing.assert_array_equal(again.ids, codec.ids)
    with pytest.raises(ValueError, match="256 distinct"):
        ActionTextCodec([5] * 256, "integers")
    with pytest.raises(ValueError, match="strategy"):
        ActionTextCodec(list(range(256)), "words")

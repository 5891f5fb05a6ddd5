"""Instruction encoder: shape, unit length, determinism, LRU cache, offline loading, a weak semantic check."""

import socket

import numpy as np
import pytest

from rt_policy_node.policies.text import (
    PrecomputedTextEncoder,
    TextEncoder,
    UniversalSentenceEncoder,
    default_text_encoder,
)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def count_model_calls(encoder: UniversalSentenceEncoder, monkeypatch) -> list[str]:
    """Record every text that reaches the real model."""
    calls = []
    model = encoder.model
    encode = model.encode
    monkeypatch.setattr(model, "encode", lambda text: calls.append(text) or encode(text))
    return calls


@pytest.fixture(scope="module")
def encoder() -> UniversalSentenceEncoder:
    return default_text_encoder()


def test_loads_offline_and_embeds(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def refuse(*args, **kwargs):
        raise AssertionError("the text encoder tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    vector = UniversalSentenceEncoder().embed("pick up the red cube")
    assert vector.shape == (512,) and vector.dtype == np.float32 and np.isfinite(vector).all()


def test_protocol_shape_dtype_and_unit_length(encoder):
    assert isinstance(encoder, TextEncoder) and encoder.dim == 512
    vector = encoder.embed("move the coke can to the left")
    assert vector.shape == (512,) and vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_default_encoder_is_shared():
    assert default_text_encoder() is default_text_encoder()


def test_deterministic_across_instances(encoder):
    text = "open the top drawer"
    np.testing.assert_array_equal(encoder.embed(text), UniversalSentenceEncoder(cache_size=0).embed(text))


def test_cache_serves_repeats_and_evicts_least_recently_used(monkeypatch):
    encoder = UniversalSentenceEncoder(cache_size=2)
    calls = count_model_calls(encoder, monkeypatch)
    first = encoder.embed("place the sponge in the bowl")
    first[:] = 0  # a caller modifying its copy must not poison the cache
    second = encoder.embed("place the sponge in the bowl")
    assert calls == ["place the sponge in the bowl"]
    assert np.linalg.norm(second) == pytest.approx(1.0, abs=1e-5)
    calls.clear()
    for text in ["a", "b", "a", "c"]:  # "b" is the least recently used when "c" arrives
        encoder.embed(text)
    encoder.embed("a")
    encoder.embed("b")
    assert calls == ["a", "b", "c", "b"]


def test_rejects_non_string(encoder):
    with pytest.raises(TypeError, match="str"):
        encoder.embed(b"pick up the red cube")
    with pytest.raises(ValueError, match="cache_size"):
        UniversalSentenceEncoder(cache_size=-1)


def test_weak_semantics_and_multilingual(encoder):
    anchor = encoder.embed("pick up the red cube")
    paraphrase = encoder.embed("grab the red block")
    german = encoder.embed("heb den roten Würfel auf")
    chinese = encoder.embed("拿起红色的方块")
    unrelated = encoder.embed("what a lovely day for sailing")
    assert not np.array_equal(anchor, paraphrase)
    for similar in (paraphrase, german, chinese):
        assert cosine(anchor, similar) > cosine(anchor, unrelated) + 0.3


def test_precomputed_table_round_trips_through_npz(tmp_path):
    embeddings = np.random.default_rng(0).normal(size=(2, 512)).astype(np.float32)
    np.savez(
        tmp_path / "use_large.npz", instructions=np.array(["pick coke can", "open top drawer"]), embeddings=embeddings
    )
    encoder = PrecomputedTextEncoder.from_npz(tmp_path / "use_large.npz", name="use-large-v5")
    assert isinstance(encoder, TextEncoder) and encoder.dim == 512 and encoder.name == "use-large-v5"
    np.testing.assert_array_equal(encoder.embed("open top drawer"), embeddings[1])
    with pytest.raises(ValueError, match="not in the embedding table"):
        encoder.embed("close top drawer")
    with pytest.raises(ValueError, match="different lengths"):
        PrecomputedTextEncoder({"a": np.zeros(512), "b": np.zeros(256)})

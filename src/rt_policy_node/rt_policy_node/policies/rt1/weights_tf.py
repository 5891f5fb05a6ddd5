"""Google's TensorFlow RT-1 variables -> this package's RT1 state dict (and the config they imply).

Input: `{checkpoint_key: array}` with keys as in the TF object graph, rooted at `network/`
(`network/_transformer/_layers/0/mha1/_query_dense/kernel`; released checkpoints' `agent/_actor_network/`
prefix is normalised to `network/` by the checkpoint reader). Inside the Keras EfficientNet, variables
are numbered `net/layer_with_weights-N/` in build order, which this module recomputes from the config.

Layout conversions: Dense kernel `[in, out]` -> Linear `[out, in]`; Conv2D `[kh, kw, in, out]` ->
`[out, in, kh, kw]`; DepthwiseConv2D `[kh, kw, C, 1]` -> `[C, 1, kh, kw]`; attention q/k/v kernels
`[D, heads, head_dim]` -> `[heads * head_dim, D]` (head-major), stacked into one q/k/v projection,
output `[heads, head_dim, D]` -> `[D, heads * head_dim]`; BatchNorm gamma/beta/moving stats and
LayerNorm gamma/beta by name; Dense layers over one-hot inputs (positions, action tokens) become
embeddings with their bias folded in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from rt_policy_node.policies.action_tokenizer import RT1_ACTION_SPEC, ActionDim
from rt_policy_node.policies.rt1.config import EFFICIENTNET_VARIANTS, RT1Config
from rt_policy_node.policies.rt1.efficientnet import STAGES, round_filters, round_repeats
from rt_policy_node.policies.rt1.model import RT1

ROOT = "network/"
TRANSFORMER = "network/_transformer/"
TOKENIZER = "network/_image_tokenizer/_tokenizer/"
EFFICIENTNET = "network/_image_tokenizer/_tokenizer/net/layer_with_weights-"
TOKEN_LEARNER = "network/_image_tokenizer/_token_learner/"
# Keras' count of images the stem normalisation was adapted on: no role in the maths.
IGNORED = (EFFICIENTNET + "0/count",)

# One entry: torch state-dict key, the checkpoint keys it is made from, and how.
Entry = tuple[str, tuple[str, ...], Callable[..., np.ndarray]]


def _same(x: np.ndarray) -> np.ndarray:
    return x


def _dense(tf: str, pt: str, bias: bool = True) -> list[Entry]:
    entries = [(f"{pt}.weight", (f"{tf}/kernel",), lambda k: k.T)]
    return entries + ([(f"{pt}.bias", (f"{tf}/bias",), _same)] if bias else [])


def _conv(tf: str, pt: str, bias: bool = False) -> list[Entry]:
    entries = [(f"{pt}.weight", (f"{tf}/kernel",), lambda k: k.transpose(3, 2, 0, 1))]
    return entries + ([(f"{pt}.bias", (f"{tf}/bias",), _same)] if bias else [])


def _depthwise(tf: str, pt: str) -> list[Entry]:
    return [(f"{pt}.weight", (f"{tf}/depthwise_kernel",), lambda k: k.transpose(2, 3, 0, 1))]


def _norm(tf: str, pt: str, batch: bool = False) -> list[Entry]:
    names = {"gamma": "weight", "beta": "bias"}
    if batch:
        names.update(moving_mean="running_mean", moving_variance="running_var")
    return [(f"{pt}.{ours}", (f"{tf}/{theirs}",), _same) for theirs, ours in names.items()]


def _embedding(tf: str, pt: str) -> list[Entry]:
    return [(f"{pt}.weight", (f"{tf}/kernel", f"{tf}/bias"), lambda k, b: k + b[None])]


def _film(tf: str, pt: str) -> list[Entry]:
    return _dense(f"{tf}/_projection_add", f"{pt}.add") + _dense(f"{tf}/_projection_mult", f"{pt}.mult")


def _attention(tf: str, pt: str) -> list[Entry]:
    qkv = ("_query_dense", "_key_dense", "_value_dense")
    entries = [
        (
            f"{pt}.to_qkv.weight",
            tuple(f"{tf}/{name}/kernel" for name in qkv),
            lambda *kernels: np.concatenate([k.reshape(k.shape[0], -1).T for k in kernels]),
        ),
        (f"{pt}.to_qkv.bias", tuple(f"{tf}/{name}/bias" for name in qkv), lambda *b: np.concatenate(b, axis=None)),
    ]
    entries.append((f"{pt}.to_out.weight", (f"{tf}/_output_dense/kernel",), lambda k: k.reshape(-1, k.shape[-1]).T))
    entries.append((f"{pt}.to_out.bias", (f"{tf}/_output_dense/bias",), _same))
    return entries


def _efficientnet_entries(config: RT1Config) -> list[Entry]:
    """The Keras EfficientNet's `layer_with_weights-N` in build order, N counting layers that own variables."""
    layer = iter(range(10_000))

    def next_layer() -> str:
        return f"{EFFICIENTNET}{next(layer)}"

    pt = "image_encoder"
    normalization = next_layer()
    entries = [(f"{pt}.normalize.{name}", (f"{normalization}/{name}",), _same) for name in ("mean", "variance")]
    entries += _conv(next_layer(), f"{pt}.stem.conv") + _norm(next_layer(), f"{pt}.stem.bn", batch=True)
    index = 0
    for _, repeats, *_, expand_ratio, _ in STAGES:
        for _ in range(round_repeats(repeats, config.depth_coefficient)):
            block = f"{pt}.blocks.{index}"
            if expand_ratio != 1:
                entries += _conv(next_layer(), f"{block}.expand.conv")
                entries += _norm(next_layer(), f"{block}.expand.bn", batch=True)
            entries += _depthwise(next_layer(), f"{block}.depthwise.conv")
            entries += _norm(next_layer(), f"{block}.depthwise.bn", batch=True)
            entries += _conv(next_layer(), f"{block}.se.reduce", bias=True)
            entries += _conv(next_layer(), f"{block}.se.expand", bias=True)
            entries += _conv(next_layer(), f"{block}.project.conv")
            entries += _norm(next_layer(), f"{block}.project.bn", batch=True)
            entries += _film(next_layer(), f"{block}.film")
            index += 1
    entries += _conv(next_layer(), f"{pt}.top.conv") + _norm(next_layer(), f"{pt}.top.bn", batch=True)
    entries += _conv(f"{TOKENIZER}conv1x1", f"{pt}.head") + _film(f"{TOKENIZER}film_layer", f"{pt}.head_film")
    return entries


def tf_entries(config: RT1Config) -> list[Entry]:
    """Every torch parameter and buffer of `RT1(config)` with the TF variables it comes from, in network order."""
    if config.feed_forward != "linear" or config.instruction_token:
        raise ValueError("the TF RT-1 has a linear feed-forward and no instruction token; this config differs")
    entries = _efficientnet_entries(config)
    entries += _norm(f"{TOKEN_LEARNER}layernorm", "token_learner.norm")
    entries += _dense(f"{TOKEN_LEARNER}mlp/_hidden_layer", "token_learner.hidden")
    entries += _dense(f"{TOKEN_LEARNER}mlp/_output_layer", "token_learner.out")
    entries += _embedding(f"{ROOT}_action_token_emb", "action_emb")
    entries += _dense(f"{TRANSFORMER}_token_emb", "transformer.token_emb")
    entries += _embedding(f"{TRANSFORMER}_position_emb", "transformer.pos_emb")
    for i in range(config.num_layers):
        tf, pt = f"{TRANSFORMER}_layers/{i}", f"transformer.layers.{i}"
        entries += _norm(f"{tf}/layernorm1", f"{pt}.norm1")
        entries += _attention(f"{tf}/mha1", f"{pt}.attn")
        entries += _norm(f"{tf}/layernorm2", f"{pt}.norm2")
        entries += _dense(f"{tf}/ff", f"{pt}.ff")
    entries += _dense(f"{TRANSFORMER}_output_tokens", "transformer.to_logits")
    return entries


def state_dict_from_tf(
    variables: dict[str, np.ndarray], config: RT1Config, stem_normalization: bool = True
) -> dict[str, torch.Tensor]:
    """TF variables keyed by checkpoint key -> a state dict that `RT1(config).load_weights` accepts.

    Raises ValueError naming the first variable that does not fit: missing, of the wrong shape, or
    not part of this architecture (keys outside `network/`, such as optimizer state, are ignored).

    `stem_normalization=False` reproduces a TF RT-1 built without ImageNet weights
    (`EfficientNetEncoder.weights = None`, as for the TF reference data): Keras' Normalization layer
    computes with constants taken when it is built or adapted, not with its variables, so such a
    network subtracts 0 and divides by 1 whatever mean and variance the checkpoint stores. Networks
    built from the ImageNet EfficientNet (how RT-1 is trained) do use the stored ImageNet statistics.
    """
    with torch.device("meta"):
        expected = RT1(config).state_dict()
    state = {}
    used = set(IGNORED)
    for key, sources, convert in tf_entries(config):
        for source in sources:
            if source not in variables:
                raise ValueError(f"checkpoint does not fit the architecture: missing {source} (for {key})")
        arrays = [np.asarray(variables[source], dtype=np.float32) for source in sources]
        value = torch.from_numpy(np.ascontiguousarray(convert(*arrays)))
        if tuple(value.shape) != tuple(expected[key].shape):
            shapes = ", ".join(
                f"{source} has shape {array.shape}" for source, array in zip(sources, arrays, strict=True)
            )
            raise ValueError(
                f"checkpoint does not fit the architecture: {shapes}, which gives {tuple(value.shape)} for {key}; "
                f"the config needs {tuple(expected[key].shape)}"
            )
        state[key] = value
        used.update(sources)
    unexpected = sorted(k for k in variables if k.startswith(ROOT) and k not in used)
    if unexpected:
        raise ValueError(f"checkpoint does not fit the architecture: unexpected {unexpected[0]}")
    for key in expected:
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
    if not stem_normalization:
        state["image_encoder.normalize.mean"] = torch.zeros_like(state["image_encoder.normalize.mean"])
        state["image_encoder.normalize.variance"] = torch.ones_like(state["image_encoder.normalize.variance"])
    return state


def config_from_tf(variables: dict[str, np.ndarray], action_spec: tuple[ActionDim, ...] = RT1_ACTION_SPEC) -> RT1Config:
    """The RT1Config that TF variables were built with, read off their shapes.

    Layers, heads, widths, tokens per image, window length and the EfficientNet variant are inferred;
    the action spec (and token order) cannot be, so it defaults to the reference's. The image size is
    the EfficientNet variant's native one (300 for B3, as RT-1 uses), and labels use the original's
    floor rounding.
    """

    def shape(key: str) -> tuple[int, ...]:
        if key not in variables:
            raise ValueError(f"not an RT-1 TF checkpoint: {key} is missing")
        return tuple(np.shape(variables[key]))

    num_layers = 0
    while f"{TRANSFORMER}_layers/{num_layers}/ff/kernel" in variables:
        num_layers += 1
    token_dim, model_dim = shape(f"{TRANSFORMER}_token_emb/kernel")
    _, num_heads, head_dim = shape(f"{TRANSFORMER}_layers/0/mha1/_query_dense/kernel")
    positions, _ = shape(f"{TRANSFORMER}_position_emb/kernel")
    _, vocab_size = shape(f"{TRANSFORMER}_output_tokens/kernel")
    text_dim, _ = shape(f"{TOKENIZER}film_layer/_projection_add/kernel")
    (hidden,) = shape(f"{TOKEN_LEARNER}mlp/_hidden_layer/bias")
    (image_tokens,) = shape(f"{TOKEN_LEARNER}mlp/_output_layer/bias")

    stem = shape(f"{EFFICIENTNET}1/kernel")[3]
    top = shape(f"{TOKENIZER}conv1x1/kernel")[2]
    blocks = sum(1 for k in variables if k.startswith(EFFICIENTNET) and k.endswith("_projection_add/kernel"))
    variant = next(
        (
            name
            for name, (width, depth, _) in EFFICIENTNET_VARIANTS.items()
            if (round_filters(32, width), round_filters(1280, width)) == (stem, top)
            and sum(round_repeats(s[1], depth) for s in STAGES) == blocks
        ),
        None,
    )
    if variant is None:
        raise ValueError(f"no EfficientNet B0-B3 has a {stem}-channel stem, {blocks} blocks and {top} top channels")

    per_step = image_tokens + sum(d.size for d in action_spec)
    if positions % per_step:
        raise ValueError(f"{positions} positions are not a whole number of {per_step}-token steps")
    return RT1Config(
        efficientnet=variant,
        image_size=EFFICIENTNET_VARIANTS[variant][2],
        token_dim=token_dim,
        image_tokens=image_tokens,
        token_learner_hidden=hidden,
        text_dim=text_dim,
        time_steps=positions // per_step,
        model_dim=model_dim,
        num_layers=num_layers,
        num_heads=num_heads,
        head_dim=head_dim,
        vocab_size=vocab_size,
        action_spec=tuple(action_spec),
        action_rounding="floor",
    )

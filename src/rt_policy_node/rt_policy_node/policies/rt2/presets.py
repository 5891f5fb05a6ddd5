"""Backbones built from config, offline: a byte-level BPE tokenizer trained in-process plus a model and
processor of one supported family at a named size (`tiny` for tests, `sim` to train on the CPU, and
`smolvlm-256m`, SmolVLM-256M's shape with random weights, for benchmarks). Nothing is downloaded.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    Idefics3Config,
    Idefics3ForConditionalGeneration,
    Idefics3ImageProcessorPil,
    Idefics3Processor,
    PaliGemmaConfig,
    PaliGemmaForConditionalGeneration,
    PaliGemmaProcessor,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
    SiglipImageProcessorPil,
    TokenizersBackend,
)

from rt_policy_node.policies.rt2.backbones import BackboneIO, Idefics3IO, PaliGemmaIO, Qwen2VLIO
from rt_policy_node.policies.rt2.prompts import ACTION_MARKER, action_prompt, plan_text, question_prompt


@dataclass(frozen=True)
class BackboneShape:
    """Sizes of a vision tower and a decoder; `model_vocab` pads the embedding beyond the tokenizer."""

    image_size: int
    patch_size: int
    vision_hidden: int
    vision_layers: int
    vision_heads: int
    vision_mlp: int
    text_hidden: int
    text_layers: int
    text_heads: int
    text_kv_heads: int
    text_mlp: int
    tokenizer_vocab: int
    model_vocab: int = 0
    # Idefics3's pixel shuffle: image tokens = (image_size / patch_size)^2 / scale_factor^2.
    scale_factor: int = 2


PRESETS: dict[str, BackboneShape] = {
    "tiny": BackboneShape(32, 8, 32, 1, 2, 64, 64, 2, 2, 1, 128, tokenizer_vocab=1024),
    "sim": BackboneShape(128, 16, 128, 4, 4, 512, 256, 4, 4, 2, 768, tokenizer_vocab=4096),
    # SmolVLM-256M: SigLIP-B/16 at 512 px, SmolLM2-135M's decoder, 64 image tokens.
    "smolvlm-256m": BackboneShape(
        512, 16, 768, 12, 12, 3072, 576, 30, 9, 3, 1536, tokenizer_vocab=2048, model_vocab=49280, scale_factor=4
    ),
}

# Special tokens of each family's tokenizer: the roles transformers reads, then the image tokens.
SPECIAL_TOKENS: dict[str, dict[str, Any]] = {
    "paligemma": {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>", "extra": ["<image>"]},
    "idefics3": {
        "pad_token": "<pad>",
        "bos_token": "<bos>",
        "eos_token": "<eos>",
        "extra": ["<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>"],
    },
    "qwen2_vl": {
        "pad_token": "<|endoftext|>",
        "eos_token": "<|im_end|>",
        "extra": ["<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"],
    },
}

COLOURS = ("red", "green", "blue", "yellow", "white", "black", "orange", "purple")
OBJECTS = ("cube", "block", "ball", "marker", "bowl", "can", "table")
VERBS = ("pick up", "lift", "push", "move", "grasp", "go to", "drive to", "place", "put down", "drop")


def default_corpus() -> list[str]:
    """Text the project's tokenizers are trained on: robot instructions, plans and the scene questions."""
    instructions = [
        f"{verb} the {colour} {thing}" for verb, colour, thing in itertools.product(VERBS, COLOURS, OBJECTS)
    ]
    lines = [action_prompt(i) for i in instructions]
    lines += [plan_text(i) + ACTION_MARKER for i in instructions]
    counts, sides, holding = itertools.cycle(range(6)), itertools.cycle(["left", "right"]), itertools.cycle([1, 0])
    for colour, thing in itertools.product(COLOURS, OBJECTS):
        other = COLOURS[(COLOURS.index(colour) + 1) % len(COLOURS)]
        pairs = [
            (f"what colour is the {thing} nearest the gripper?", colour),
            ("which object is nearest the gripper?", f"the {colour} {thing}"),
            ("how many objects are there?", str(next(counts))),
            (f"how many {thing}s are on the table?", str(next(counts))),
            ("what is on the table?", f"a {colour} {thing} and a {other} {thing}"),
            (f"is the {colour} {thing} left or right of the gripper?", next(sides)),
            ("what is the gripper holding?", f"the {colour} {thing}" if next(holding) else "nothing"),
        ]
        lines += [f"{question_prompt(q)} {a}" for q, a in pairs]
    return lines


def train_tokenizer(
    corpus: Iterable[str], family: str, vocab_size: int, split_digits: bool = False
) -> TokenizersBackend:
    """A byte-level BPE tokenizer with `family`'s special tokens.

    By default every number 0..255 becomes one token (so the `integers` action codec works); with
    `split_digits` numbers are cut into digits, as Gemma, Qwen2 and SmolLM2 do.
    """
    if family not in SPECIAL_TOKENS:
        raise ValueError(f"unknown backbone family {family!r}; known: {sorted(SPECIAL_TOKENS)}")
    roles = {k: v for k, v in SPECIAL_TOKENS[family].items() if k != "extra"}
    specials = list(dict.fromkeys([*roles.values(), *SPECIAL_TOKENS[family]["extra"]]))
    tokenizer = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.pre_tokenizer = (
        pre_tokenizers.Sequence([pre_tokenizers.Digits(individual_digits=True), byte_level])
        if split_digits
        else byte_level
    )
    tokenizer.decoder = decoders.ByteLevel()
    numbers = " ".join(str(v) for v in range(256))
    texts = [*corpus, *([] if split_digits else [numbers] * 4)]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return TokenizersBackend(tokenizer_object=tokenizer, **roles)


def build_backbone(
    family: str,
    shape: BackboneShape | str = "tiny",
    tokenizer: Any = None,
    corpus: Iterable[str] | None = None,
    seed: int = 0,
) -> tuple[Any, BackboneIO]:
    """A randomly initialised model of `family` at `shape` and its processor (a trained tokenizer inside)."""
    if family not in _BUILDERS:
        raise ValueError(f"unknown backbone family {family!r}; known: {sorted(_BUILDERS)}")
    if isinstance(shape, str):
        if shape not in PRESETS:
            raise ValueError(f"unknown backbone preset {shape!r}; known: {sorted(PRESETS)}")
        shape = PRESETS[shape]
    if tokenizer is None:
        tokenizer = train_tokenizer(default_corpus() if corpus is None else corpus, family, shape.tokenizer_vocab)
    torch.manual_seed(seed)
    model, io = _BUILDERS[family](shape, tokenizer)
    return model.eval(), io


def _token_ids(tokenizer: Any) -> dict[str, int | None]:
    return {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }


def _vocab(shape: BackboneShape, tokenizer: Any) -> int:
    return max(len(tokenizer), shape.model_vocab)


def _decoder(shape: BackboneShape, tokenizer: Any, **extra: Any) -> dict[str, Any]:
    return {
        "hidden_size": shape.text_hidden,
        "intermediate_size": shape.text_mlp,
        "num_hidden_layers": shape.text_layers,
        "num_attention_heads": shape.text_heads,
        "num_key_value_heads": shape.text_kv_heads,
        "vocab_size": _vocab(shape, tokenizer),
        **_token_ids(tokenizer),
        **extra,
    }


def _siglip(shape: BackboneShape, **extra: Any) -> dict[str, Any]:
    return {
        "hidden_size": shape.vision_hidden,
        "intermediate_size": shape.vision_mlp,
        "num_hidden_layers": shape.vision_layers,
        "num_attention_heads": shape.vision_heads,
        "image_size": shape.image_size,
        "patch_size": shape.patch_size,
        **extra,
    }


def _paligemma(shape: BackboneShape, tokenizer: Any) -> tuple[Any, BackboneIO]:
    image_processor = SiglipImageProcessorPil(size={"height": shape.image_size, "width": shape.image_size})
    image_processor.image_seq_length = (shape.image_size // shape.patch_size) ** 2
    # The processor adds PaliGemma's <loc>/<seg> tokens to the tokenizer, so the vocabulary is sized after it.
    processor = PaliGemmaProcessor(image_processor=image_processor, tokenizer=tokenizer)
    config = PaliGemmaConfig(
        vision_config=_siglip(shape, model_type="siglip_vision_model"),
        text_config=_decoder(shape, tokenizer, model_type="gemma", head_dim=shape.text_hidden // shape.text_heads),
        image_token_index=processor.image_token_id,
        vocab_size=_vocab(shape, tokenizer),
        projection_dim=shape.text_hidden,
        hidden_size=shape.text_hidden,
    )
    return PaliGemmaForConditionalGeneration(config), PaliGemmaIO(processor)


def _idefics3(shape: BackboneShape, tokenizer: Any) -> tuple[Any, BackboneIO]:
    grid = shape.image_size // shape.patch_size
    if grid % shape.scale_factor:
        raise ValueError(f"a {grid}x{grid} patch grid does not divide by scale factor {shape.scale_factor}")
    image_processor = Idefics3ImageProcessorPil(
        size={"longest_edge": shape.image_size},
        max_image_size={"longest_edge": shape.image_size},
        do_image_splitting=False,
    )
    processor = Idefics3Processor(
        image_processor=image_processor, tokenizer=tokenizer, image_seq_len=(grid // shape.scale_factor) ** 2
    )
    config = Idefics3Config(
        vision_config=_siglip(shape),
        text_config=_decoder(shape, tokenizer, model_type="llama"),
        image_token_id=processor.image_token_id,
        scale_factor=shape.scale_factor,
    )
    return Idefics3ForConditionalGeneration(config), Idefics3IO(processor)


def _qwen2_vl(shape: BackboneShape, tokenizer: Any) -> tuple[Any, BackboneIO]:
    pixels = shape.image_size**2
    image_processor = Qwen2VLImageProcessorPil(
        patch_size=shape.patch_size, merge_size=2, temporal_patch_size=2, min_pixels=pixels, max_pixels=pixels
    )
    half = shape.text_hidden // shape.text_heads // 2
    temporal = half // 4
    height = (half - temporal) // 2
    rope = {
        "rope_type": "default",
        "rope_theta": 10000.0,
        "mrope_section": [temporal, height, half - temporal - height],
    }
    token = tokenizer.convert_tokens_to_ids
    config = Qwen2VLConfig(
        vision_config={
            "depth": shape.vision_layers,
            "embed_dim": shape.vision_hidden,
            "hidden_size": shape.text_hidden,
            "num_heads": shape.vision_heads,
            "mlp_ratio": shape.vision_mlp // shape.vision_hidden,
            "patch_size": shape.patch_size,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        text_config=_decoder(shape, tokenizer, rope_parameters=rope),
        image_token_id=token(Qwen2VLIO.image_pad),
        video_token_id=token("<|video_pad|>"),
        vision_start_token_id=token(Qwen2VLIO.vision_start),
        vision_end_token_id=token(Qwen2VLIO.vision_end),
    )
    return Qwen2VLForConditionalGeneration(config), Qwen2VLIO(image_processor, tokenizer)


_BUILDERS = {"paligemma": _paligemma, "idefics3": _idefics3, "qwen2_vl": _qwen2_vl}

"""Constrained decoding: only valid actions come out, whatever the model prefers, with or without a plan."""

import itertools
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch
from rt2_training import train_steps

from rt_policy_node.data.vl_jsonl import VLExample
from rt_policy_node.policies.rt2.codec import ActionTextCodec
from rt_policy_node.policies.rt2.constrained import ActionConstraint
from rt_policy_node.policies.rt2.modeling import RT2Model
from rt_policy_node.policies.rt2.presets import build_backbone, default_corpus, train_tokenizer
from rt_policy_node.policies.rt2.processing import RobotExample
from rt_policy_node.policies.rt2.prompts import action_prompt

VOCAB = 1000
EOS = 2
CODEC = ActionTextCodec(list(range(700, 956)), "integers")
ALLOWED = CODEC.allowed_mask(VOCAB)
MARKER = [40, 41]
INSTRUCTION = "pick up the red cube"
TOKENS = np.array([1, 10, 250, 128, 0, 64, 200, 255, 3, 77, 180])


def greedy(constraint: ActionConstraint, prompt_length: int, preferred: torch.Tensor, steps: int) -> list[int]:
    """Decodes `steps` tokens from a fake model whose scores are always `preferred`."""
    ids = torch.zeros(1, prompt_length, dtype=torch.long)
    for _ in range(steps):
        scores = constraint(ids, preferred.clone()[None])
        ids = torch.cat([ids, scores.argmax(-1, keepdim=True)], dim=1)
        if ids[0, -1] == EOS:
            break
    return ids[0, prompt_length:].tolist()


def test_each_action_position_admits_only_its_bins_even_against_the_model():
    preferred = torch.randn(VOCAB)
    preferred[:700] += 100.0  # the model strongly prefers ordinary text
    constraint = ActionConstraint(ALLOWED, prompt_length=5, eos_id=EOS)
    ids = greedy(constraint, 5, preferred, constraint.max_new_tokens)
    assert len(ids) == 11
    tokens = CODEC.decode(ids)
    assert tokens[0] in (0, 1, 2)
    assert ids == CODEC.encode(tokens).tolist()


def test_admitted_ids_win_even_when_the_model_gives_them_minus_infinity_or_nan():
    scores = torch.zeros(2, VOCAB)
    scores[:, 700:] = -float("inf")
    scores[1, 700:] = float("nan")
    constraint = ActionConstraint(ALLOWED, prompt_length=3, eos_id=EOS)
    out = constraint(torch.zeros(2, 3, dtype=torch.long), scores)
    assert ALLOWED[0, out.argmax(-1)].all()


def test_when_the_model_already_prefers_valid_ids_the_constraint_changes_nothing():
    preferred = torch.randn(VOCAB)
    preferred[CODEC.ids[2]] = 50.0  # mode 2 and every other dimension at bin 2
    constraint = ActionConstraint(ALLOWED, prompt_length=4, eos_id=EOS)
    assert greedy(constraint, 4, preferred, 11) == [int(CODEC.ids[2])] * 11


@pytest.mark.parametrize("marker_at", [None, 3])
def test_plan_text_is_free_until_the_marker_then_the_action_then_the_end(marker_at):
    preferred = torch.randn(VOCAB)
    preferred[EOS] = 200.0  # a model that wants to stop at once
    preferred[50] = 100.0  # ... else babble
    # A model that writes the marker itself after `marker_at` plan tokens (None: never; it is then forced).
    wants = {} if marker_at is None else {marker_at: MARKER[0], marker_at + 1: MARKER[1]}
    constraint = ActionConstraint(ALLOWED, 7, EOS, marker=MARKER, max_plan_tokens=6, special_ids=[0, 1])
    ids = torch.zeros(1, 7, dtype=torch.long)
    while ids.shape[1] - 7 < constraint.max_new_tokens and ids[0, -1] != EOS:
        scores = preferred.clone()
        if ids.shape[1] - 7 in wants:
            scores[wants[ids.shape[1] - 7]] = 300.0
        step = constraint(ids, scores[None])
        ids = torch.cat([ids, step.argmax(-1, keepdim=True)], dim=1)
    out = ids[0, 7:].tolist()
    plan_length = 6 if marker_at is None else marker_at
    assert out[:plan_length] == [50] * plan_length
    assert out[plan_length : plan_length + 2] == MARKER
    CODEC.decode(out[plan_length + 2 : plan_length + 13])
    assert out[plan_length + 13 :] == [EOS]


def test_plan_mode_keeps_special_tokens_out_of_the_plan():
    constraint = ActionConstraint(ALLOWED, 2, EOS, marker=MARKER, max_plan_tokens=8, special_ids=[0, 1, 3])
    out = constraint(torch.zeros(1, 4, dtype=torch.long), torch.zeros(1, VOCAB))
    assert torch.isinf(out[0, [0, 1, 2, 3]]).all() and torch.isfinite(out[0, 4:]).all()


def test_plan_mode_tracks_each_row_of_a_batch_on_its_own():
    constraint = ActionConstraint(ALLOWED, 1, EOS, marker=MARKER, max_plan_tokens=8)
    rows = torch.tensor([[0, 9, 9, 9], [0, 9, *MARKER]])
    admit = torch.isfinite(constraint(rows, torch.zeros(2, VOCAB)))
    assert admit[0].sum() == VOCAB - 1 and not admit[0, EOS]
    assert torch.equal(admit[1], ALLOWED[0])


@pytest.fixture(scope="module")
def teach():
    """Teaches a fresh tiny Idefics3 RT-2 model one answer to one prompt about one image."""
    image = np.random.default_rng(1).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    tokenizer = train_tokenizer(default_corpus(), "idefics3", 1024)

    def taught(example: RobotExample | VLExample) -> RT2Model:
        model = RT2Model.from_backbone(*build_backbone("idefics3", "tiny", tokenizer=tokenizer))
        batch = itertools.repeat(model.collator()([example]))
        # Until teacher-forced argmax is right on every answer token twice running: then greedy decoding
        # reproduces the answer.
        history = []
        while len(history) < 80 and [m["token_accuracy"] for m in history[-2:]] != [1.0, 1.0]:
            history += train_steps(model, batch, steps=2, lr=3e-3)
        assert history[-1]["token_accuracy"] == 1.0
        return model

    return image, taught


def test_a_model_that_prefers_invalid_tokens_still_yields_a_valid_action(teach):
    image, taught = teach
    question = action_prompt(INSTRUCTION)[len("Q: ") : -len(" A:")]
    model = taught(VLExample(image, question, "the cube is red and the table is brown"))
    inputs = model.prompt_inputs(image, action_prompt(INSTRUCTION))
    free = model.generate(inputs, constrained=False)[0].tolist()
    taught_ids = model.io.text_ids(" the cube is red and the table is brown")
    assert free[:5] == taught_ids[:5]
    with pytest.raises(ValueError, match="not a valid action"):
        model.codec.decode(free[:11])
    constrained = model.generate(inputs)[0].tolist()
    assert len(constrained) == 11
    model.codec.decode(constrained)
    assert model.answer(image, action_prompt(INSTRUCTION)).tokens.shape == (11,)


def test_constrained_and_free_decoding_agree_when_the_model_prefers_the_action(teach):
    image, taught = teach
    model = taught(RobotExample(image, INSTRUCTION, TOKENS))
    inputs = model.prompt_inputs(image, action_prompt(INSTRUCTION))
    free = model.generate(inputs, constrained=False)[0].tolist()
    constrained = model.generate(inputs)[0].tolist()
    assert free[:11] == constrained == model.codec.encode(TOKENS).tolist()
    assert model.generate(inputs, use_cache=False)[0].tolist() == constrained

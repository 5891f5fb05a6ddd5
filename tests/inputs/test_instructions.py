"""validate_instruction (ROS-free): the one rule the policy node and the recorder apply (#21 finding 3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rt_policy_node.instructions import validate_instruction

GARBAGE = {
    "replacement characters": "\ufffd" * 12,
    "DEL": "\x7f\x7f\x7f",
    "zero-width spaces": "\u200b\u200c\u200d\u2060",
    "private use": "\ue000\uf8ff\U000f0000",
    "punctuation only": "?!... -- ***",
    "symbols only": "→ ★ ☃ 🤖",
}


@pytest.mark.parametrize("text", GARBAGE.values(), ids=GARBAGE.keys())
def test_text_without_a_letter_or_digit_is_refused(text):
    with pytest.raises(ValueError, match="no letter or digit"):
        validate_instruction(text, 1000)


@pytest.mark.parametrize(
    "text",
    [
        "pick\u200b\u200b\u200b\u200b\u200b up",  # 5 of 12 format characters: still an instruction
        "a" + "\x7f" * 2,  # 2 of 3 control characters: noise
        "\ue000\ue001\ue002 cube",  # 3 private-use, 1 space, 4 letters: half, not more
    ],
)
def test_mostly_noise_is_refused_and_some_is_not(text):
    noise = sum(1 for c in text if c in "\u200b\x7f\ue000\ue001\ue002")
    if noise > len(text) / 2:
        with pytest.raises(ValueError, match=f"{noise} of its {len(text)} characters are control"):
            validate_instruction(text, 1000)
    else:
        assert validate_instruction(text, 1000) == text


@pytest.mark.parametrize(
    "text", ["pick up the red cube", "  Stapel die Blöcke \n", "把红色方块捡起来", "go to marker 3", "¡ven aquí!", "7"]
)
def test_instructions_in_any_script_pass_stripped(text):
    assert validate_instruction(text, 1000) == text.strip()


def test_empty_and_over_long_instructions_are_refused():
    with pytest.raises(ValueError, match="it is empty"):
        validate_instruction(" \t\n ", 1000)
    with pytest.raises(ValueError, match="1001 characters, more than 1000"):
        validate_instruction("x" * 1001, 1000)
    assert validate_instruction("y" * 1000, 1000) == "y" * 1000


@given(st.text(max_size=50))
def test_any_text_is_an_instruction_or_a_value_error(text):
    try:
        result = validate_instruction(text, 40)
    except ValueError:
        return
    assert result == text.strip() and 0 < len(result) <= 40

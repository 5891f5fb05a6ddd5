"""Instruction paraphrases: every task's instructions are read right, paraphrases keep the meaning, and the
held-out evaluation phrasings are never among them."""

import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from rt_policy_node.data.paraphrase import (
    COLOUR_WORDS,
    LANGUAGES,
    Command,
    embed_paraphrases,
    english,
    other_language,
    paraphrases,
    parse_command,
)
from rt_sim.instruction_file import load_instruction_file
from rt_sim.tasks import make_task, task_names

ACTIONS = {"pick_cube": "pick", "drive_to_marker": "drive", "push_cube": "push", "table_pick": "fetch"}
HELD_OUT = Path(__file__).resolve().parents[2] / "benchmarks" / "instructions"


def canonical_instructions() -> list[tuple[str, str, dict]]:
    """(task, instruction, params) for every template of every task, with every colour and direction."""
    found = []
    for name in task_names():
        task = make_task(name)
        for template in task.templates:
            for colour in COLOUR_WORDS:
                for direction in ("left", "right") if "{direction}" in template else ("",):
                    params = {"colour": colour, "direction": direction}
                    found.append((name, template.format(**params), params))
    return found


def test_every_task_instruction_is_read_as_its_command():
    assert set(task_names()) == set(ACTIONS)
    for task, instruction, params in canonical_instructions():
        assert parse_command(instruction) == Command(ACTIONS[task], params["colour"], params["direction"]), instruction


@pytest.mark.parametrize(
    "instruction", ["pick up the cube", "put the red cube on the blue one", "dance", "push the red cube", ""]
)
def test_instructions_without_one_clear_meaning_get_no_paraphrases(instruction):
    assert parse_command(instruction) is None
    assert paraphrases(instruction, 10) == []


def test_paraphrases_are_distinct_and_deterministic():
    for _, instruction, _ in canonical_instructions():
        found = paraphrases(instruction, 60, seed=3)
        assert len(found) == len(set(found)) == 60 and instruction not in found
        assert found == paraphrases(instruction, 60, seed=3)
    assert paraphrases("pick up the red cube", 60, seed=3) != paraphrases("pick up the red cube", 60, seed=4)


def test_english_phrasings_keep_the_colour_and_the_direction():
    rng = np.random.default_rng(0)
    for _, instruction, params in canonical_instructions():
        for _ in range(50):
            text = english(parse_command(instruction), rng)
            assert re.findall(r"\b(?:red|green|blue|yellow)\b", text) == [params["colour"]], text
            if params["direction"]:
                assert re.findall(r"\b(?:left|right)", text) == [params["direction"]], text


def test_other_languages_name_the_colour_and_direction_in_that_language():
    rng = np.random.default_rng(0)
    words = {"es": ("amarillo", "derecha"), "de": ("gelben", "rechts"), "fr": ("jaune", "droite"), "zh": ("黄色", "右")}
    assert set(LANGUAGES) == set(words)
    for language, (colour, direction) in words.items():
        for action in ("pick", "drive", "push", "fetch"):
            command = Command(action, "yellow", "right" if action == "push" else "")
            for _ in range(10):
                text = other_language(command, language, rng)
                assert colour in text and (direction in text) == (action == "push"), text
    found = paraphrases("pick up the yellow cube", 400, seed=0, other_languages=1.0)
    assert len(found) > 10 and not any("yellow" in text for text in found)


def test_held_out_evaluation_phrasings_are_never_generated():
    generated = set()
    for _, instruction, _ in canonical_instructions():
        generated.update(paraphrases(instruction, 400, seed=0))
    assert len(generated) > 10_000
    for name in ("paraphrases.yaml", "languages.yaml"):
        path = HELD_OUT / name
        for task, templates in load_instruction_file(path, list(yaml.safe_load(path.read_text()))).items():
            for template in templates:
                for colour in COLOUR_WORDS:
                    for direction in ("left", "right"):
                        text = template.render({"colour": colour, "direction": direction})
                        assert text not in generated, f"{name} {task}: {text!r} is also a training paraphrase"


class CountingEncoder:
    """A stand-in sentence encoder: a deterministic vector per text, counting calls."""

    dim = 8

    def __init__(self):
        self.calls = 0

    def embed(self, text: str) -> np.ndarray:
        self.calls += 1
        return np.random.default_rng(list(text.encode())).standard_normal(self.dim).astype(np.float32)


def test_embedded_paraphrases_line_up_with_their_instruction():
    encoder = CountingEncoder()
    texts, embeddings = embed_paraphrases(["pick the red cube", "do a dance"], encoder, 5, seed=1)
    assert [len(t) for t in texts] == [5, 0]
    assert embeddings[0].shape == (5, 8) and embeddings[1].shape == (0, 8)
    np.testing.assert_array_equal(embeddings[0][2], encoder.embed(texts[0][2]))

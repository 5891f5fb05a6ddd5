"""`rt-eval --instructions FILE`: templates load, render each episode's words, and bad files fail early."""

import pytest

from rt_sim.instruction_file import InstructionFileError, Template, draw, load_instruction_file


def write(tmp_path, text):
    path = tmp_path / "instructions.yaml"
    path.write_text(text)
    return path


def test_templates_render_the_episode_in_english_or_in_their_own_words(tmp_path):
    path = write(
        tmp_path,
        """
pick_cube:
  - could you grab the {colour} block?
  - template: "levanta el cubo {colour}"
    colours: {red: rojo, green: verde, blue: azul, yellow: amarillo}
push_cube:
  - template: "schieb den {colour} Würfel nach {direction}"
    colours: {red: roten, green: grünen, blue: blauen, yellow: gelben}
    directions: {left: links, right: rechts}
""",
    )
    templates = load_instruction_file(path, ["pick_cube", "push_cube"])
    english, spanish = templates["pick_cube"]
    assert english.render({"colour": "red"}) == "could you grab the red block?"
    assert spanish.render({"colour": "yellow"}) == "levanta el cubo amarillo"
    (german,) = templates["push_cube"]
    assert german.render({"colour": "blue", "direction": "left"}) == "schieb den blauen Würfel nach links"


def test_each_seed_draws_the_same_template_and_all_are_drawn():
    templates = [Template(f"t{i} {{colour}}") for i in range(5)]
    drawn = [draw(templates, seed)[0] for seed in range(200)]
    assert drawn == [draw(templates, seed)[0] for seed in range(200)]
    assert set(drawn) == set(range(5))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pick_cube: [\n", "not valid YAML"),
        ("- pick up the {colour} cube\n", "mapping of task names"),
        ("pick_cubes:\n  - pick up the {colour} cube\n", "unknown task"),
        ("drive_to_marker:\n  - go to the {colour} marker\n", "no templates for task"),
        ("pick_cube: []\n", "non-empty list"),
        ("pick_cube:\n  - pick up the cube\n", "has no {colour}"),
        ("pick_cube:\n  - pick up the {color} cube\n", "uses ['color']"),
        ("pick_cube:\n  - pick up the {colour cube\n", "not a valid template"),
        ("pick_cube:\n  - 42\n", "expected a string or a mapping"),
        ("pick_cube:\n  - {template: 'x {colour}', colors: {red: r}}\n", "unknown keys"),
        ("pick_cube:\n  - {template: 'x {colour}', colours: {red: rojo}}\n", "no word for"),
        ("push_cube:\n  - push the {colour} cube\n", "has no {direction}"),
    ],
)
def test_a_malformed_file_is_a_clear_error(tmp_path, text, message):
    with pytest.raises(InstructionFileError, match=message.replace("[", r"\[").replace("{", r"\{")) as error:
        load_instruction_file(write(tmp_path, text), ["pick_cube"] if "push" not in text else ["push_cube"])
    assert "instructions.yaml" in str(error.value)


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(InstructionFileError, match="cannot read"):
        load_instruction_file(tmp_path / "nope.yaml", ["pick_cube"])

"""Users' own instruction phrasings for `rt-eval --instructions FILE`.

FILE is YAML mapping a task name to a list of templates. A template is a string with `{colour}` (and, for
push_cube, `{direction}`), filled with the episode's English words, or a mapping with `template` and the words
to fill in per colour (`colours`) and per direction (`directions`), for other languages:

    pick_cube:
      - could you grab the {colour} block?
      - template: "levanta el cubo {colour}"
        colours: {red: rojo, green: verde, blue: azul, yellow: amarillo}

Each episode draws one template deterministically from its seed. Everything is checked when the file is
loaded, so a bad file fails before any process starts.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from rt_sim.scene import COLOURS
from rt_sim.tasks import make_task, task_names
from rt_sim.tasks.push_cube import DIRECTIONS

# Placeholders a template may use (each an episode parameter of that name), the key of a mapping entry that
# gives their words, and every value they take.
PLACEHOLDERS = {"colour": "colours", "direction": "directions"}
VALUES = {"colour": tuple(COLOURS), "direction": tuple(DIRECTIONS)}


class InstructionFileError(ValueError):
    """A malformed instruction file; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Template:
    """One phrasing: `text` with placeholders, and the words they take per parameter value (else the value)."""

    text: str
    words: dict[str, dict[str, str]] = field(default_factory=dict)

    def render(self, params: dict[str, Any]) -> str:
        """The instruction for an episode with these task parameters."""
        values = {
            name: self.words.get(words_key, {}).get(str(params[name]), str(params[name]))
            for name, words_key in PLACEHOLDERS.items()
            if name in params
        }
        return self.text.format(**values)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _template(entry: Any, where: str) -> Template:
    if isinstance(entry, str):
        return Template(entry)
    if not isinstance(entry, dict) or not isinstance(entry.get("template"), str):
        raise InstructionFileError(f"{where}: expected a string or a mapping with a 'template' string, got {entry!r}")
    unknown = set(entry) - {"template", *PLACEHOLDERS.values()}
    if unknown:
        raise InstructionFileError(f"{where}: unknown keys {sorted(unknown)} (allowed: template, colours, directions)")
    words = {}
    for key in PLACEHOLDERS.values():
        if key in entry:
            table = entry[key]
            if not isinstance(table, dict) or not all(isinstance(v, str) and v for v in table.values()):
                raise InstructionFileError(f"{where}: '{key}' must map each value to a non-empty word")
            words[key] = {str(k): v for k, v in table.items()}
    return Template(entry["template"], words)


def _check(template: Template, params: dict[str, Any], where: str) -> None:
    """Fails unless `template` can render every episode of a task whose parameters look like `params`."""
    try:
        used = _fields(template.text)
    except ValueError as err:
        raise InstructionFileError(f"{where}: {template.text!r} is not a valid template ({err})") from err
    allowed = {name for name in PLACEHOLDERS if name in params}
    if used - allowed:
        names = ", ".join("{" + n + "}" for n in sorted(allowed)) or "none"
        raise InstructionFileError(f"{where}: {template.text!r} uses {sorted(used - allowed)}; this task has {names}")
    missing = allowed - used
    if missing:
        raise InstructionFileError(
            f"{where}: {template.text!r} has no {', '.join('{' + n + '}' for n in sorted(missing))}: the instruction"
            " would not say which object the task means"
        )
    for name in used:
        table = template.words.get(PLACEHOLDERS[name])
        if table is not None and set(VALUES[name]) - set(table):
            raise InstructionFileError(
                f"{where}: '{PLACEHOLDERS[name]}' has no word for {sorted(set(VALUES[name]) - set(table))}"
            )


def load_instruction_file(path: str | Path, tasks: list[str]) -> dict[str, list[Template]]:
    """The templates of FILE for each of `tasks`, checked against what those tasks' episodes need."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as err:
        raise InstructionFileError(f"{path}: cannot read it ({err.strerror})") from err
    except yaml.YAMLError as err:
        raise InstructionFileError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(data, dict) or not data:
        raise InstructionFileError(f"{path}: expected a mapping of task names to lists of templates")
    unknown = [name for name in data if name not in task_names()]
    if unknown:
        raise InstructionFileError(f"{path}: unknown task(s) {unknown}; known tasks: {', '.join(task_names())}")
    missing = [task for task in tasks if task not in data]
    if missing:
        raise InstructionFileError(f"{path}: no templates for task(s) {missing}")
    templates: dict[str, list[Template]] = {}
    for task in tasks:
        entries = data[task]
        if not isinstance(entries, list) or not entries:
            raise InstructionFileError(f"{path}: {task}: expected a non-empty list of templates")
        params = make_task(task).episode(0).params
        templates[task] = []
        for index, entry in enumerate(entries):
            where = f"{path}: {task}[{index}]"
            template = _template(entry, where)
            _check(template, params, where)
            templates[task].append(template)
    return templates


def draw(templates: list[Template], seed: int) -> tuple[int, Template]:
    """The template episode `seed` uses, and its index: the same seed always draws the same one."""
    index = int(np.random.default_rng([seed, len(templates)]).integers(len(templates)))
    return index, templates[index]

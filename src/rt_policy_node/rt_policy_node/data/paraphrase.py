"""Paraphrases of robot instructions, for training-time instruction augmentation.

A policy trained on a handful of canonical instructions ("pick up the red cube") learns their exact
embeddings; a user's own words ("could you grab the red block?") land elsewhere in the sentence encoder's
space, and FiLM carries that shift into every visual feature. Training on many phrasings of the same
command teaches the policy that only the meaning matters.

`parse_command` reads an instruction into its meaning (`Command`: what to do, which colour, which object,
which way); `paraphrases` renders that meaning again in other words: English verbs and nouns from synonym
lists, polite and question forms, and a few other languages. An instruction it cannot read gets no
paraphrases, so augmentation never changes what a command asks for. Everything is deterministic in the
seed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rt_policy_node.policies.text import TextEncoder

ACTIONS = ("pick", "drive", "push", "fetch")
# Colour words this reader recognises, and how other languages say them (masculine / neuter / feminine forms
# are picked by the templates below).
COLOUR_WORDS = ("red", "green", "blue", "yellow")
DIRECTIONS = ("left", "right")


@dataclass(frozen=True)
class Command:
    """What an instruction asks for: `action` (pick, drive, push, fetch = drive to the table and pick), the
    target's `colour`, and for push the `direction` (left or right, in the robot's frame)."""

    action: str
    colour: str
    direction: str = ""


_PATTERNS = {
    "push": re.compile(r"\b(push|slide|shove|nudge)\b"),
    "fetch": re.compile(r"(?=.*\btable\b).*\b(pick|lift|grab|take|get|fetch)\b"),
    "pick": re.compile(r"\b(pick|lift|grab|take|grasp|raise)\b"),
    "drive": re.compile(r"\b(drive|go|move|head|navigate)\b.*\b(marker|spot|circle|disc|mark|patch|pad|square)\b"),
}


def parse_command(instruction: str) -> Command | None:
    """The meaning of an English instruction in this project's task vocabulary, or None when it names no single
    known colour or no known action (such an instruction is left as it is)."""
    text = instruction.lower()
    colours = [c for c in COLOUR_WORDS if re.search(rf"\b{c}\b", text)]
    if len(colours) != 1:
        return None
    action = next((name for name, pattern in _PATTERNS.items() if pattern.search(text)), None)
    if action is None:
        return None
    if action == "push":
        directions = [d for d in DIRECTIONS if re.search(rf"\b{d}\b", text)]
        if len(directions) != 1:
            return None
        return Command("push", colours[0], directions[0])
    return Command(action, colours[0])


# -- English ------------------------------------------------------------------------------------------------

_EN_NOUN = {
    "cube": ("cube", "block", "box", "brick", "toy block", "square block", "cube", "block"),
    "marker": ("marker", "spot", "circle", "floor marker", "disc", "mark", "patch", "target", "pad", "marker"),
}
_EN_VERB = {
    "pick": (
        "pick up",
        "pick",
        "lift",
        "grab",
        "take",
        "get",
        "grasp",
        "raise",
        "fetch",
        "collect",
        "lift up",
        "pick up and hold",
        "take hold of",
    ),
    "drive": (
        "drive to",
        "go to",
        "move to",
        "head to",
        "navigate to",
        "drive over to",
        "go over to",
        "head over to",
        "make your way to",
        "travel to",
        "roll over to",
        "drive up to",
        "get to",
        "approach",
        "go and stand at",
    ),
    "push": ("push", "slide", "shove", "nudge", "move", "shift", "slide over", "push over"),
}
_EN_TO_TABLE = (
    "go to the table",
    "drive to the table",
    "head to the table",
    "go over to the table",
    "drive up to the table",
    "approach the table",
    "move to the table",
    "make your way to the table",
    "navigate to the table",
)
_EN_DIRECTION = {
    "left": (
        "to the left",
        "left",
        "to your left",
        "towards the left",
        "over to the left",
        "leftwards",
        "to the left side",
    ),
    "right": (
        "to the right",
        "right",
        "to your right",
        "towards the right",
        "over to the right",
        "rightwards",
        "to the right side",
    ),
}
_EN_WRAPPERS = (
    "{}",
    "{}",
    "{}",
    "please {}",
    "{}, please",
    "can you {}?",
    "could you {}?",
    "would you {}?",
    "could you please {}?",
    "i want you to {}",
    "i need you to {}",
    "i'd like you to {}",
    "robot, {}",
    "hey robot, {}",
    "now {}",
    "go ahead and {}",
    "your task: {}",
    "{} now",
    "{} for me",
    "try to {}",
    "ok, {}",
    "{}.",
)


def _pick(rng: np.random.Generator, options: tuple[str, ...]) -> str:
    return options[int(rng.integers(len(options)))]


_EN_SIZE = ("", "", "", "little ", "small ")


def _english_object(rng: np.random.Generator, colour: str, kind: str) -> str:
    noun = _pick(rng, _EN_NOUN[kind])
    size = _pick(rng, _EN_SIZE) if kind == "cube" else ""
    forms = (
        f"the {size}{colour} {noun}",
        f"the {size}{colour} {noun}",
        f"the {size}{colour} {noun}",
        f"the {noun} that is {colour}",
        f"the {colour}-coloured {noun}",
        f"the {colour} one",
        f"that {colour} {noun}",
        f"the {noun} coloured {colour}",
    )
    return _pick(rng, forms)


def english(command: Command, rng: np.random.Generator) -> str:
    """One English phrasing of `command`."""
    kind = "marker" if command.action == "drive" else "cube"
    target = _english_object(rng, command.colour, kind)
    if command.action == "push":
        body = f"{_pick(rng, _EN_VERB['push'])} {target} {_pick(rng, _EN_DIRECTION[command.direction])}"
    elif command.action == "fetch":
        pick = f"{_pick(rng, _EN_VERB['pick'])} {target}"
        table = _pick(rng, _EN_TO_TABLE)
        forms = (f"{table} and {pick}", f"{table}, then {pick}", f"{table} and {pick} there", f"{pick} from the table")
        body = _pick(rng, forms)
    else:
        body = f"{_pick(rng, _EN_VERB[command.action])} {target}"
    return _pick(rng, _EN_WRAPPERS).format(body)


# -- Other languages ----------------------------------------------------------------------------------------
# A few templates per action in Spanish, German, French and Chinese; {c} is the colour in the form the noun
# needs. The encoder is multilingual, so these teach the policy that a command in another language means the
# same; languages not listed here are left for evaluation.

_COLOURS = {
    "es": {"red": "rojo", "green": "verde", "blue": "azul", "yellow": "amarillo"},
    # The weak adjective ending fits both "den roten Würfel" and "zur roten Markierung".
    "de": {"red": "roten", "green": "grünen", "blue": "blauen", "yellow": "gelben"},
    "fr": {"red": "rouge", "green": "vert", "blue": "bleu", "yellow": "jaune"},
    "zh": {"red": "红色", "green": "绿色", "blue": "蓝色", "yellow": "黄色"},
}
_DIRECTION_WORDS = {
    "es": {"left": "la izquierda", "right": "la derecha"},
    "de": {"left": "links", "right": "rechts"},
    "fr": {"left": "la gauche", "right": "la droite"},
    "zh": {"left": "左", "right": "右"},
}
_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "es": {
        "pick": ("recoge el cubo {c}", "levanta el cubo {c}", "coge el bloque {c}", "toma el cubo {c}, por favor"),
        "drive": ("ve al marcador {c}", "conduce hasta el marcador {c}", "muévete al marcador {c}"),
        "push": ("empuja el cubo {c} hacia {d}", "desliza el cubo {c} a {d}"),
        "fetch": ("ve a la mesa y recoge el cubo {c}", "acércate a la mesa y levanta el cubo {c}"),
    },
    "de": {
        "pick": (
            "heb den {c} Würfel auf",
            "nimm den {c} Würfel",
            "greif den {c} Block",
            "hebe bitte den {c} Würfel hoch",
        ),
        "drive": ("fahr zur {c} Markierung", "geh zur {c} Markierung", "fahre bitte zur {c} Markierung"),
        "push": ("schieb den {c} Würfel nach {d}", "schiebe den {c} Block nach {d}"),
        "fetch": ("fahr zum Tisch und heb den {c} Würfel auf", "geh zum Tisch und nimm den {c} Würfel"),
    },
    "fr": {
        "pick": (
            "ramasse le cube {c}",
            "prends le cube {c}",
            "soulève le bloc {c}",
            "attrape le cube {c}, s'il te plaît",
        ),
        "drive": ("va au marqueur {c}", "roule jusqu'au marqueur {c}", "déplace-toi vers le marqueur {c}"),
        "push": ("pousse le cube {c} vers {d}", "fais glisser le cube {c} vers {d}"),
        "fetch": ("va à la table et prends le cube {c}", "approche-toi de la table et ramasse le cube {c}"),
    },
    "zh": {
        "pick": ("拿起{c}的方块", "抓起{c}方块", "请把{c}的方块拿起来", "捡起{c}方块"),
        "drive": ("开到{c}的标记那里", "去{c}标记", "请移动到{c}的标记"),
        "push": ("把{c}方块推到{d}边", "向{d}推{c}的方块"),
        "fetch": ("走到桌子前拿起{c}方块", "去桌子那里抓起{c}的方块"),
    },
}


def other_language(command: Command, language: str, rng: np.random.Generator) -> str:
    """One phrasing of `command` in `language` (es, de, fr, zh)."""
    template = _pick(rng, _TEMPLATES[language][command.action])
    words = {"c": _COLOURS[language][command.colour]}
    if command.direction:
        words["d"] = _DIRECTION_WORDS[language][command.direction]
    return template.format(**words)


LANGUAGES = tuple(_TEMPLATES)


def paraphrases(instruction: str, count: int, seed: int = 0, other_languages: float = 0.15) -> list[str]:
    """Up to `count` distinct paraphrases of `instruction` (never the instruction itself), about
    `other_languages` of them in another language; [] when `parse_command` cannot read it."""
    command = parse_command(instruction)
    if command is None or count <= 0:
        return []
    rng = np.random.default_rng([seed, *instruction.encode()])
    found: dict[str, None] = {}
    for _ in range(count * 20):
        if rng.random() < other_languages:
            text = other_language(command, _pick(rng, LANGUAGES), rng)
        else:
            text = english(command, rng)
        if text != instruction:
            found[text] = None
        if len(found) == count:
            break
    return list(found)


def embed_paraphrases(
    instructions: list[str], encoder: TextEncoder, count: int, seed: int = 0
) -> tuple[list[list[str]], list[np.ndarray]]:
    """For each instruction, its `paraphrases` and their embeddings `[K, dim]` (K may be 0) from `encoder`."""
    texts = [paraphrases(instruction, count, seed) for instruction in instructions]
    embeddings = [
        np.stack([encoder.embed(t) for t in group]) if group else np.zeros((0, encoder.dim), np.float32)
        for group in texts
    ]
    return texts, embeddings

"""What counts as an instruction: the one check the policy node and the episode recorder both apply. ROS-free.

After surrounding whitespace is stripped, an instruction is refused when it is empty, longer than the
node's `max_instruction_length`, has no letter or digit at all (no character of a Unicode category L* or
N*, in any script), or when more than half of its characters are control, format, unassigned, private-use
or surrogate characters (categories Cc, Cf, Cn, Co, Cs, by the Unicode version of Python's `unicodedata`):
runs of U+FFFD, DEL, zero-width spaces or private-use characters are noise, not a task, and a robot must
not act on them. Punctuation, symbols and spaces are neither; "pick up the cube!" passes.
"""

from __future__ import annotations

import unicodedata

NOISE_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs"})
MAX_NOISE_FRACTION = 0.5


def validate_instruction(text: str, max_length: int) -> str:
    """`text` with surrounding whitespace stripped; raises ValueError saying why it is not an instruction."""
    text = text.strip()
    if not text:
        raise ValueError("it is empty")
    if len(text) > max_length:
        raise ValueError(f"it has {len(text)} characters, more than {max_length}")
    categories = [unicodedata.category(character) for character in text]
    if not any(category[0] in "LN" for category in categories):
        raise ValueError("it has no letter or digit")
    noise = sum(category in NOISE_CATEGORIES for category in categories)
    if noise > MAX_NOISE_FRACTION * len(text):
        raise ValueError(
            f"{noise} of its {len(text)} characters are control, format, unassigned, private-use or surrogate"
            " characters"
        )
    return text

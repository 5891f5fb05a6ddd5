"""How ROS 2 launch turns text into typed values: YAML rules by default, or the type a `<param type=...>` names.

Without a type, `3` is an int, `0.5` a float, `true`/`yes`/`on` booleans, `[1, 2]` a list, and text that
YAML reads as anything else (a mapping such as `a: b`, null) is an error; an empty string stays a string.
With `type="str"` the text is kept as it is; `int` and `float` use Python's conversion (`float("0")` is
0.0); `bool` takes YAML's booleans plus `1` and `0`; `list_of_*` take a YAML list of that type.
`lenient` is how a launch file's literal text is read before its substitutions are known: what does not
convert stays text, to be converted when the substitutions have been evaluated.
"""

from __future__ import annotations

import yaml

ValueType = tuple[type, bool]
"""A scalar type and whether the value is a list of it."""

STR: ValueType = (str, False)
BOOL: ValueType = (bool, False)
SCALARS = (int, float, bool, str)
# `<param type=...>`; `yaml` (None) means YAML rules, like no type at all.
TYPE_NAMES: dict[str, ValueType | None] = {
    "str": STR,
    "bool": BOOL,
    "float": (float, False),
    "int": (int, False),
    "list_of_str": (str, True),
    "list_of_bool": (bool, True),
    "list_of_float": (float, True),
    "list_of_int": (int, True),
    "yaml": None,
}


def type_name(kind: ValueType | None) -> str:
    """How the real launch's messages print a type: `<class 'int'>`, `typing.List[int]`, `None`."""
    if kind is None:
        return "None"
    scalar, is_list = kind
    return f"typing.List[{scalar.__name__}]" if is_list else repr(scalar)


def allowed(value: object, lenient: bool = False) -> bool:
    """Whether `value` is a launch value: a scalar, or a list whose items share one scalar type."""
    if isinstance(value, list):
        if not value:
            return True
        member = next((type(item) for item in value if type(item) is not str), str)
        if member not in SCALARS:
            return False
        return all(isinstance(item, (member, str) if lenient else member) for item in value)
    return isinstance(value, SCALARS)


def is_instance(value: object, kind: ValueType | None, lenient: bool = False) -> bool:
    """Whether `value` already has the type `kind` (None: any launch value)."""
    if kind is None:
        return allowed(value, lenient)
    scalar, is_list = kind
    accepted = (str, scalar) if lenient else scalar
    if not is_list:
        return isinstance(value, accepted)
    return isinstance(value, list) and all(isinstance(item, accepted) for item in value)


def _from_yaml(text: str, what: str, lenient: bool) -> object:
    """YAML's reading of `text` if it is a launch value; `what` opens the error message."""
    if not text:
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        if lenient:
            return text
        raise ValueError(f"{what}: yaml.safe_load() failed\n{err}") from err
    if not allowed(value, lenient):
        raise ValueError(f"{what}: output type is not allowed, got {type(value)}")
    return value


def coerce(text: str, kind: ValueType | None, *, lenient: bool) -> object:
    """`text` converted to `kind`; ValueError with the real launch's message when it does not convert."""
    if kind is None:
        return _from_yaml(text, f"Failed to convert '{text}' using yaml rules", lenient)
    scalar, is_list = kind
    accepted = (str, scalar) if lenient else scalar
    if is_list:
        message = f"Cannot convert value '{text}' to a list of '{accepted}'"
        value = _from_yaml(text, message, lenient)
        if not isinstance(value, list):
            raise ValueError(message)
        if not all(isinstance(item, accepted) for item in value):
            raise ValueError(f"{message}, got {value}")
        return value
    if scalar is str:
        return text
    if scalar in (int, float):
        try:
            return scalar(text)
        except ValueError:
            if lenient:
                return text
            raise
    text = {"1": "true", "0": "false"}.get(text, text)
    value = _from_yaml(text, f"Failed to convert '{text}' to '{bool}'", lenient)
    if isinstance(value, accepted):
        return value
    raise ValueError(f"Cannot convert value '{text}' to '{bool}'")

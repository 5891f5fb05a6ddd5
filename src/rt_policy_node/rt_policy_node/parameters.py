"""A node's parameters as data: one table per node, from which the node declares them and the docs are made.

ROS-free, so the config YAML files and the parameter reference can be checked against it without starting a node.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Parameter:
    """One ROS parameter: its default (which fixes its type), what it does, its bounds, whether it is read-only."""

    name: str
    default: Any
    description: str
    low: float | None = None
    high: float | None = None
    read_only: bool = False

    def __post_init__(self) -> None:
        bounded = self.low is not None or self.high is not None
        if bounded and (self.low is None or self.high is None):
            raise ValueError(f"parameter {self.name!r}: give both bounds or neither")
        if bounded and (isinstance(self.default, bool) or not isinstance(self.default, int | float)):
            raise TypeError(f"parameter {self.name!r}: a range needs a numeric default, got {self.default!r}")
        if bounded and not self.low <= self.default <= self.high:
            raise ValueError(f"parameter {self.name!r}: default {self.default} outside [{self.low}, {self.high}]")

    @property
    def type_name(self) -> str:
        """The ROS parameter type its default gives it."""
        if isinstance(self.default, bool):
            return "bool"
        if isinstance(self.default, list | tuple):
            return "string array" if all(isinstance(v, str) for v in self.default) else "array"
        return {int: "int", float: "double", str: "string"}[type(self.default)]


def defaults(parameters: Iterable[Parameter]) -> dict[str, Any]:
    """name -> default."""
    return {p.name: p.default for p in parameters}


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, list | tuple):
        return ", ".join(f"`{v}`" for v in value) if value else "(none)"
    if value == "":
        return '`""`'
    return f"`{value}`"


def _bound(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def markdown_table(parameters: Iterable[Parameter]) -> str:
    """The parameters as a Markdown table: name, type, default, range, description (read-only ones marked)."""
    rows = ["| parameter | type | default | range | description |", "|---|---|---|---|---|"]
    for p in parameters:
        bounds = f"{_bound(p.low)} .. {_bound(p.high)}" if p.low is not None else ""
        description = p.description.replace("|", "\\|")
        if p.read_only:
            description += " Read-only." if description.endswith(".") else ". Read-only."
        rows.append(f"| `{p.name}` | {p.type_name} | {_cell(p.default)} | {bounds} | {description} |")
    return "\n".join(rows) + "\n"

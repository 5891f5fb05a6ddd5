"""The task suite: one module per task in this package, each registering one `Task` subclass.

A task turns a seed into an episode (instruction, layout, parameters), says from the privileged state
whether the episode succeeded, and gives the scripted expert's plan. Adding a task is adding a module
here that defines a `@register`-ed subclass; nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

import numpy as np

from rt_sim.scene import COLOURS, Layout

_REGISTRY: dict[str, type[Task]] = {}


@dataclass
class Episode:
    """One sampled instance of a task: what the robot is told, where things start, what the expert needs."""

    task: str
    seed: int
    instruction: str
    layout: Layout
    params: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class Task:
    """Base class: set `name`, `templates` (str.format templates over the params) and `max_steps`."""

    name: ClassVar[str]
    templates: ClassVar[tuple[str, ...]]
    # Control steps (3 Hz) the expert needs at most; evaluation gives a policy the same budget.
    max_steps: ClassVar[int]

    def episode(self, seed: int, colour: str = "") -> Episode:
        """The episode for `seed`: the same seed always gives the same instruction and layout.

        `colour` replaces the seed's target colour in the same layout (the same scene, another object asked
        for), for demonstrations and evaluations that contrast instructions; "" keeps the seed's.
        """
        rng = np.random.default_rng(seed)
        layout, params = self.sample(rng)
        template = self.templates[int(rng.integers(len(self.templates)))]
        if colour:
            if "colour" not in params:
                raise ValueError(f"task {self.name!r} has no target colour to set")
            if colour not in COLOURS:
                raise ValueError(f"unknown colour {colour!r}; choose from {', '.join(COLOURS)}")
            params = {**params, "colour": colour}
        return Episode(self.name, seed, template.format(**params), layout, params)

    def sample(self, rng: np.random.Generator) -> tuple[Layout, dict[str, Any]]:
        """A random layout and the task parameters (JSON-able) that the templates and the detector use."""
        raise NotImplementedError

    def success(self, state: dict[str, Any], params: dict[str, Any]) -> bool:
        """Whether the task is achieved in `state` (Simulation.observe())."""
        raise NotImplementedError

    def plan(self, params: dict[str, Any]) -> list:
        """The scripted expert's skills (rt_sim.expert), executed in order."""
        raise NotImplementedError


def register(cls: type[Task]) -> type[Task]:
    """Class decorator adding a task to the registry under `cls.name`."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"task name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def _discover() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def task_names() -> list[str]:
    _discover()
    return sorted(_REGISTRY)


def make_task(name: str) -> Task:
    """The registered task called `name`; a clear KeyError lists the known ones."""
    _discover()
    if name not in _REGISTRY:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]()

"""Question/answer pairs about a rendered frame, computed from the simulation state that produced it.

The scene is described in the robot's base frame (x forward, y left, z up; metres): objects with a kind,
a colour and a centre, the gripper's position and, when there is one, the table top's height. The answers
are exact because they come from the state, not from a labeller, so the project can make as much
vision-language data as it renders frames.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from rt_policy_node.data.vl_jsonl import VLExample

# How far (metres) an object's bottom may be from the table top and still rest on it.
RESTING_TOLERANCE = 0.01
# Objects within this distance (metres) of the gripper and off the surface are being held.
HOLD_DISTANCE = 0.05
# Left/right questions are asked only when the sideways offset is at least this (metres).
MIN_SIDEWAYS = 0.02


@dataclass(frozen=True)
class SceneObject:
    """One thing in view: its kind ("cube", "marker"), colour, centre and height (metres)."""

    kind: str
    colour: str
    position: tuple[float, float, float]
    height: float = 0.04

    @property
    def name(self) -> str:
        return f"{self.colour} {self.kind}"

    @property
    def bottom(self) -> float:
        return self.position[2] - self.height / 2


@dataclass(frozen=True)
class Scene:
    """What a frame shows: the objects, the gripper's position and the table top's height (if any)."""

    objects: tuple[SceneObject, ...]
    gripper_position: tuple[float, float, float]
    table_height: float | None = None

    def distance_to_gripper(self, obj: SceneObject) -> float:
        return math.dist(obj.position, self.gripper_position)

    def on_table(self, obj: SceneObject) -> bool:
        return self.table_height is not None and abs(obj.bottom - self.table_height) <= RESTING_TOLERANCE

    def held(self) -> SceneObject | None:
        """The object at the gripper that rests on nothing, if any."""
        support = 0.0 if self.table_height is None else self.table_height
        lifted = [o for o in self.objects if o.bottom > support + RESTING_TOLERANCE]
        near = [o for o in lifted if self.distance_to_gripper(o) <= HOLD_DISTANCE]
        return min(near, key=self.distance_to_gripper, default=None)


def scene_qa(scene: Scene) -> list[tuple[str, str]]:
    """Every question this module knows how to answer about `scene`, with its answer."""
    pairs = []
    objects = sorted(scene.objects, key=lambda o: (o.kind, o.colour, o.position))
    kinds = sorted({o.kind for o in objects})
    for kind in kinds:
        nearest = min((o for o in objects if o.kind == kind), key=scene.distance_to_gripper)
        pairs.append((f"what colour is the {kind} nearest the gripper?", nearest.colour))
    if objects:
        nearest = min(objects, key=scene.distance_to_gripper)
        pairs.append(("which object is nearest the gripper?", f"the {nearest.name}"))
    pairs.append(("how many objects are there?", str(len(objects))))
    if scene.table_height is not None:
        resting = [o for o in objects if scene.on_table(o)]
        for kind in kinds:
            count = sum(o.kind == kind for o in resting)
            pairs.append((f"how many {_plural(kind)} are on the table?", str(count)))
        pairs.append(("what is on the table?", _listing([o.name for o in resting])))
    unique = [o for o in objects if Counter(p.name for p in objects)[o.name] == 1]
    for obj in unique:
        sideways = obj.position[1] - scene.gripper_position[1]
        if abs(sideways) >= MIN_SIDEWAYS:
            side = "left" if sideways > 0 else "right"
            pairs.append((f"is the {obj.name} left or right of the gripper?", side))
    held = scene.held()
    pairs.append(("what is the gripper holding?", f"the {held.name}" if held else "nothing"))
    return pairs


def scene_examples(image: np.ndarray, scene: Scene) -> list[VLExample]:
    """The pairs of `scene_qa` as training examples about the frame `image` rendered from `scene`."""
    return [VLExample(image=image, question=q, answer=a) for q, a in scene_qa(scene)]


def _plural(noun: str) -> str:
    return noun + ("es" if noun.endswith(("s", "x", "ch", "sh")) else "s")


def _listing(names: list[str]) -> str:
    if not names:
        return "nothing"
    items = [f"a {name}" for name in names]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]

"""Arm only: pick up the named cube from the table in front of the robot."""

from __future__ import annotations

from typing import Any

import numpy as np

from rt_sim.expert import Terminate, pick_plan
from rt_sim.robot_model import HOME_ARM_JOINTS
from rt_sim.scene import COLOURS, CUBE_SIZE, TABLE_HEIGHT, WORK_BASE_X, Layout, cubes_on_table, markers_behind
from rt_sim.tasks import Task, register

# A cube counts as picked when held between both fingers this far above where it rests.
LIFT_HEIGHT = 0.05


def cube_lifted(state: dict[str, Any], colour: str) -> bool:
    """The cube is between both fingers and at least LIFT_HEIGHT above the table."""
    cube = state["cubes"][colour]
    return cube["fingers"] == 2 and cube["position"][2] > TABLE_HEIGHT + CUBE_SIZE / 2 + LIFT_HEIGHT


@register
class PickCube(Task):
    name = "pick_cube"
    templates = ("pick up the {colour} cube", "pick the {colour} cube", "lift the {colour} cube")
    max_steps = 45

    def sample(self, rng: np.random.Generator) -> tuple[Layout, dict[str, Any]]:
        base = (WORK_BASE_X - rng.uniform(0.0, 0.04), rng.uniform(-0.08, 0.08), rng.uniform(-0.1, 0.1))
        layout = Layout(base, HOME_ARM_JOINTS, cubes_on_table(rng), markers_behind(rng))
        return layout, {"colour": str(rng.choice(list(COLOURS)))}

    def success(self, state: dict[str, Any], params: dict[str, Any]) -> bool:
        return cube_lifted(state, params["colour"])

    def plan(self, params: dict[str, Any]) -> list:
        return [*pick_plan(params["colour"]), Terminate()]

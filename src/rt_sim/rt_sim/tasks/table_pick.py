"""Base, then arm: drive up to the table from across the room and pick up the named cube."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rt_sim.expert import DriveTo, Terminate, pick_plan
from rt_sim.robot_model import HOME_ARM_JOINTS
from rt_sim.scene import COLOURS, WORK_BASE_X, Layout, cubes_on_table, markers_behind
from rt_sim.tasks import Task, register
from rt_sim.tasks.pick_cube import cube_lifted

# The base stops in front of the cube, but no further sideways than this from the table's centre line.
WORK_Y_LIMIT = 0.25


@register
class TablePick(Task):
    name = "table_pick"
    templates = (
        "go to the table and pick up the {colour} cube",
        "drive to the table and pick up the {colour} cube",
        "go to the table and lift the {colour} cube",
    )
    max_steps = 90

    def sample(self, rng: np.random.Generator) -> tuple[Layout, dict[str, Any]]:
        distance = rng.uniform(0.8, 1.5)
        y = rng.uniform(-0.5, 0.5)
        x = WORK_BASE_X - distance
        # Roughly facing the table, so it is in view from the first frame.
        yaw = math.atan2(-y, WORK_BASE_X + 0.5 - x) + rng.uniform(-0.3, 0.3)
        layout = Layout((x, y, yaw), HOME_ARM_JOINTS, cubes_on_table(rng), markers_behind(rng))
        return layout, {"colour": str(rng.choice(list(COLOURS)))}

    def success(self, state: dict[str, Any], params: dict[str, Any]) -> bool:
        return cube_lifted(state, params["colour"])

    def plan(self, params: dict[str, Any]) -> list:
        colour = params["colour"]

        def work_pose(state: dict[str, Any]) -> tuple[float, float]:
            cube_y = state["cubes"][colour]["position"][1]
            return WORK_BASE_X, float(np.clip(cube_y, -WORK_Y_LIMIT, WORK_Y_LIMIT))

        return [DriveTo(work_pose, heading=lambda state: 0.0), *pick_plan(colour), Terminate()]

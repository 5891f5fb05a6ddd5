"""Arm only: push the named cube sideways (left or right, in the robot's frame) along the table."""

from __future__ import annotations

from typing import Any

import numpy as np

from rt_sim.expert import Grip, MoveGripper, Terminate, cube_in_base
from rt_sim.geometry import world_to_base
from rt_sim.robot_model import HOME_ARM_JOINTS
from rt_sim.scene import (
    COLOURS,
    CUBE_SIZE,
    TABLE_HEIGHT,
    WORK_BASE_X,
    Layout,
    cubes_on_table,
    markers_behind,
)
from rt_sim.tasks import Task, register

# Success: the cube moved at least this far the named way (base_link y at the start) and stayed on the table.
PUSH_DISTANCE = 0.08
DIRECTIONS = {"left": 1.0, "right": -1.0}
# The lane the pushed cube sweeps must be free of other cubes.
LANE_HALF_WIDTH = 0.07
LANE_LENGTH = 0.22
# The closed fingers travel this high above the table while pushing.
PUSH_HEIGHT = 0.03


@register
class PushCube(Task):
    name = "push_cube"
    templates = ("push the {colour} cube to the {direction}", "slide the {colour} cube to the {direction}")
    max_steps = 60

    def sample(self, rng: np.random.Generator) -> tuple[Layout, dict[str, Any]]:
        base = (WORK_BASE_X - rng.uniform(0.0, 0.04), rng.uniform(-0.08, 0.08), rng.uniform(-0.1, 0.1))
        for _ in range(1000):
            colour = str(rng.choice(list(COLOURS)))
            direction = str(rng.choice(list(DIRECTIONS)))
            cubes = cubes_on_table(rng, y_range=(-0.22, 0.22))
            if self._lane_clear(base, cubes, colour, DIRECTIONS[direction]):
                start = [*cubes[colour][:2], TABLE_HEIGHT + CUBE_SIZE / 2]
                params = {"colour": colour, "direction": direction, "start": start, "base_yaw": base[2]}
                return Layout(base, HOME_ARM_JOINTS, cubes, markers_behind(rng)), params
        raise RuntimeError("could not lay out a clear push lane")

    @staticmethod
    def _lane_clear(base, cubes, colour: str, sign: float) -> bool:
        target = world_to_base(base, cubes[colour][:2])
        for other, pose in cubes.items():
            if other == colour:
                continue
            offset = world_to_base(base, pose[:2]) - target
            if abs(offset[0]) < LANE_HALF_WIDTH and -0.1 < sign * offset[1] < LANE_LENGTH:
                return False
        return True

    def success(self, state: dict[str, Any], params: dict[str, Any]) -> bool:
        cube = np.asarray(state["cubes"][params["colour"]]["position"])
        moved = world_to_base((0.0, 0.0, params["base_yaw"]), cube[:2] - np.asarray(params["start"][:2]))
        on_table = abs(cube[2] - params["start"][2]) < 0.01
        return bool(on_table and DIRECTIONS[params["direction"]] * moved[1] >= PUSH_DISTANCE)

    def plan(self, params: dict[str, Any]) -> list:
        colour, sign = params["colour"], DIRECTIONS[params["direction"]]
        tool_z = TABLE_HEIGHT + PUSH_HEIGHT + 0.02  # the tool centre point is 2 cm above the fingertips

        def heading(state: dict[str, Any]) -> float:
            return 0.0

        def beside(height: float):
            def target(state: dict[str, Any], start: dict[str, Any]) -> np.ndarray:
                cube = cube_in_base(state, colour)
                return np.array([cube[0], cube[1] - sign * 0.075, height])

            return target

        def pushed(state: dict[str, Any], start: dict[str, Any]) -> np.ndarray:
            return np.asarray(start["ee_position"]) + np.array([0.0, sign * 0.17, 0.0])

        def raised(state: dict[str, Any], start: dict[str, Any]) -> np.ndarray:
            return np.asarray(start["ee_position"]) + np.array([0.0, 0.0, 0.08])

        return [
            Grip(+1.0, steps=2),
            MoveGripper(beside(tool_z + 0.08), heading, gripper=+1.0, tolerance_m=0.015),
            MoveGripper(beside(tool_z), heading, gripper=+1.0, tolerance_m=0.01),
            MoveGripper(pushed, heading, gripper=+1.0, tolerance_m=0.015),
            MoveGripper(raised, heading, gripper=+1.0, tolerance_m=0.02),
            Terminate(),
        ]

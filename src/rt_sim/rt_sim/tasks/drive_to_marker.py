"""Base only: drive up to the named floor marker, among others, all in view at the start, and stop facing it.

The robot stops with the marker just ahead of its base rather than under it: the head camera cannot see
the floor beneath the base, so "onto" would end every episode on dead reckoning, while a marker at the
stand-off distance stays in view (just above the base's edge) until the robot stops.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rt_sim.expert import DriveTo, Terminate
from rt_sim.geometry import world_to_base
from rt_sim.robot_model import HOME_ARM_JOINTS
from rt_sim.scene import ARENA_HALF_SIZE, COLOURS, MARKER_RADIUS, TABLE_FRONT_X, Layout, cubes_on_table
from rt_sim.tasks import Task, register

# Success: the marker's centre is within ARRIVAL_RADIUS of the point STANDOFF ahead of the base's centre.
STANDOFF = 0.5
ARRIVAL_RADIUS = 0.12
VIEW_HALF_ANGLE = 0.45
DISTANCE_RANGE = (0.9, 2.2)
# Markers stay this far from the table's front and inside the floor.
TABLE_CLEARANCE_X = TABLE_FRONT_X - 0.35
FLOOR_LIMIT = ARENA_HALF_SIZE - 0.5


@register
class DriveToMarker(Task):
    name = "drive_to_marker"
    templates = ("drive to the {colour} marker", "go to the {colour} marker", "move to the {colour} marker")
    max_steps = 45

    def sample(self, rng: np.random.Generator) -> tuple[Layout, dict[str, Any]]:
        for _ in range(1000):
            base = (rng.uniform(-2.5, -0.8), rng.uniform(-1.5, 1.5), rng.uniform(-math.pi, math.pi))
            markers = self._markers_in_view(rng, base)
            if markers is not None:
                layout = Layout(base, HOME_ARM_JOINTS, cubes_on_table(rng), markers)
                return layout, {"colour": str(rng.choice(list(COLOURS)))}
        raise RuntimeError("could not lay out the markers")

    @staticmethod
    def _markers_in_view(
        rng: np.random.Generator, base: tuple[float, float, float]
    ) -> dict[str, tuple[float, float]] | None:
        """Markers ahead of the base within the camera's view, spaced out, or None if they do not fit."""
        points: list[tuple[float, float]] = []
        for _ in range(200):
            bearing = base[2] + rng.uniform(-VIEW_HALF_ANGLE, VIEW_HALF_ANGLE)
            distance = rng.uniform(*DISTANCE_RANGE)
            point = (base[0] + distance * math.cos(bearing), base[1] + distance * math.sin(bearing))
            inside = abs(point[0]) < FLOOR_LIMIT and abs(point[1]) < FLOOR_LIMIT and point[0] < TABLE_CLEARANCE_X
            if inside and all(math.dist(point, other) > 2 * MARKER_RADIUS + 0.2 for other in points):
                points.append(point)
                if len(points) == len(COLOURS):
                    return dict(zip(COLOURS, points, strict=True))
        return None

    def success(self, state: dict[str, Any], params: dict[str, Any]) -> bool:
        return arrived_at(state, params["colour"])

    def plan(self, params: dict[str, Any]) -> list:
        colour = params["colour"]

        def bearing(state: dict[str, Any]) -> float:
            (x, y, _), (mx, my) = state["base"], state["markers"][colour]
            return math.atan2(my - y, mx - x)

        def stand_off(state: dict[str, Any]) -> tuple[float, float]:
            mx, my = state["markers"][colour]
            heading = bearing(state)
            return mx - STANDOFF * math.cos(heading), my - STANDOFF * math.sin(heading)

        return [DriveTo(stand_off, heading=bearing, tolerance_m=0.04), Terminate()]


def arrived_at(state: dict[str, Any], colour: str) -> bool:
    """The marker of `colour` is centred STANDOFF ahead of the base, within ARRIVAL_RADIUS."""
    ahead = world_to_base(state["base"], state["markers"][colour])
    return math.dist(ahead[:2], (STANDOFF, 0.0)) < ARRIVAL_RADIUS

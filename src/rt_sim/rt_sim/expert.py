"""Scripted expert: privileged state in, one RT-1 action per control step out.

A task's plan is a list of skills (drive the base somewhere, move the gripper somewhere, open or close
it, terminate). Each skill is a closed-loop controller over `Simulation.observe()` state that emits
actions in RT-1's normalised action space, so the executor turns them into motion exactly as it does
a learned policy's actions.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rt_policy_node.policies.policy import Action, Mode
from rt_sim.geometry import (
    matrix_from_rotation_vector,
    rot_z,
    rotation_vector,
    rpy_from_matrix,
    world_to_base,
    wrap_angle,
)

if TYPE_CHECKING:
    from rt_policy_node.robot.profile import RobotProfile

State = dict[str, Any]
Guard = Callable[[State], bool]
# Top-down grasp: the tool's approach axis (z) points down; its closing axis (y) lies along the heading.
TOP_DOWN = np.diag([-1.0, 1.0, -1.0])
# Finger positions (state["gripper"]: 0 closed, 0.04 open): wide enough for a 4 cm cube, and closed past one.
GRIPPER_OPEN = 0.03
GRIPPER_EMPTY = 0.012


@dataclass(frozen=True)
class Scales:
    """What one unit of each normalised action field means to the executor (its robot profile's `scale`),
    and the largest rotations per step the expert asks for (the profile's angular velocity limits)."""

    world_vector: float  # metres of end-effector travel at world_vector = 1
    rotation_delta: float  # radians of end-effector rotation per unit of rotation_delta
    base_displacement: float  # metres of base travel at base_displacement = 1
    base_rotation: float  # radians of base yaw per unit of base_rotation
    max_rotation_rad: float
    max_base_rotation_rad: float

    @classmethod
    def from_profile(cls, profile: RobotProfile) -> Scales:
        """From an rt_policy_node robot profile (rt_policy_node.robot.profile.RobotProfile)."""
        period = profile.control_period_s
        return cls(
            world_vector=profile.scale.world_vector,
            rotation_delta=profile.scale.rotation_delta,
            base_displacement=profile.scale.base_displacement,
            base_rotation=profile.scale.base_rotation,
            max_rotation_rad=profile.limits.ee_angular_velocity * period,
            max_base_rotation_rad=profile.limits.base_angular_velocity * period,
        )


def _normalised(error: np.ndarray, scale: float) -> np.ndarray:
    """`error` in metres as a normalised command: the whole error when it fits in one step, else full speed."""
    command = np.asarray(error, np.float64) / scale
    peak = np.abs(command).max()
    return (command / peak if peak > 1.0 else command).astype(np.float32)


def _rpy_step(rotation_error: np.ndarray, limit: float) -> np.ndarray:
    """A rotation error (axis * angle, base frame), its angle capped at `limit`, as RT-1's roll/pitch/yaw."""
    angle = float(np.linalg.norm(rotation_error))
    capped = rotation_error * (limit / angle) if angle > limit else rotation_error
    return rpy_from_matrix(matrix_from_rotation_vector(capped))


def cube_in_base(state: State, colour: str) -> np.ndarray:
    """A cube's centre in base_link."""
    return world_to_base(state["base"], state["cubes"][colour]["position"])


def grasp_heading(state: State, colour: str) -> float:
    """Heading of a top-down grasp across the cube's faces, in base_link, the one nearest straight ahead."""
    relative = wrap_angle(state["cubes"][colour]["yaw"] - state["base"][2])
    return (relative + math.pi / 4) % (math.pi / 2) - math.pi / 4


class Skill:
    """One phase of a plan: `act` returns the next action, or None once the phase is complete.

    `guard`, when given, says whether the phase still makes sense in a state (closing needs the fingers around
    the cube, lifting a cube between them). When it fails, the expert goes back to the nearest earlier phase whose
    guard holds, so a plan recovers from states it did not lead to itself: a learned policy's, under DAgger."""

    guard: Guard | None = None

    def holds(self, state: State) -> bool:
        return self.guard is None or self.guard(state)

    def start(self, state: State) -> None:
        self.start_state = state

    def act(self, state: State, scales: Scales) -> Action | None:
        raise NotImplementedError


class DriveTo(Skill):
    """Base mode: drive to an odom (x, y), facing `heading` (odom yaw) or, when None, the goal while far from it."""

    def __init__(
        self,
        goal: Callable[[State], tuple[float, float]],
        heading: Callable[[State], float] | None = None,
        tolerance_m: float = 0.03,
        tolerance_rad: float = 0.05,
    ) -> None:
        self.goal, self.heading = goal, heading
        self.tolerance_m, self.tolerance_rad = tolerance_m, tolerance_rad

    def act(self, state: State, scales: Scales) -> Action | None:
        x, y, yaw = state["base"]
        gx, gy = self.goal(state)
        error = world_to_base(state["base"], (gx, gy))[:2]
        distance = float(np.linalg.norm(error))
        if self.heading is not None:
            target_yaw = self.heading(state)
        else:
            target_yaw = math.atan2(gy - y, gx - x) if distance > 0.3 else yaw
        yaw_error = wrap_angle(target_yaw - yaw)
        if distance < self.tolerance_m and abs(yaw_error) < self.tolerance_rad:
            return None
        return Action(
            mode=Mode.BASE,
            base_displacement=_normalised(error, scales.base_displacement),
            base_rotation=float(np.clip(yaw_error, -scales.max_base_rotation_rad, scales.max_base_rotation_rad))
            / scales.base_rotation,
        )


class MoveGripper(Skill):
    """Arm mode: move the tool centre point to a base_link position, top-down at a heading, gripper held.
    With the gripper asked open (-1), the move is complete only once the fingers are open."""

    def __init__(
        self,
        target: Callable[[State, State], np.ndarray],
        heading: Callable[[State], float],
        gripper: float,
        tolerance_m: float = 0.01,
        tolerance_rad: float = 0.06,
        guard: Guard | None = None,
    ) -> None:
        self.target, self.heading, self.gripper = target, heading, gripper
        self.tolerance_m, self.tolerance_rad = tolerance_m, tolerance_rad
        self.guard = guard

    def start(self, state: State) -> None:
        super().start(state)
        self.heading_rad = self.heading(state)

    def act(self, state: State, scales: Scales) -> Action | None:
        error = self.target(state, self.start_state) - np.asarray(state["ee_position"])
        desired = rot_z(self.heading_rad) @ TOP_DOWN
        rotation_error = rotation_vector(desired @ np.asarray(state["ee_rotation"]).T)
        opened = self.gripper > 0 or state["gripper"] >= GRIPPER_OPEN
        if np.linalg.norm(error) < self.tolerance_m and np.linalg.norm(rotation_error) < self.tolerance_rad and opened:
            return None
        return Action(
            mode=Mode.ARM,
            world_vector=_normalised(error, scales.world_vector),
            rotation_delta=(_rpy_step(rotation_error, scales.max_rotation_rad) / scales.rotation_delta).astype(
                np.float32
            ),
            gripper_closedness=self.gripper,
        )


class Grip(Skill):
    """Arm mode: hold still and open (-1) or close (+1) the gripper for `steps` control steps."""

    def __init__(self, closedness: float, steps: int = 3, guard: Guard | None = None) -> None:
        self.closedness, self.steps = closedness, steps
        self.guard = guard

    def start(self, state: State) -> None:
        super().start(state)
        self.done = 0

    def act(self, state: State, scales: Scales) -> Action | None:
        if self.done >= self.steps:
            return None
        self.done += 1
        return Action(mode=Mode.ARM, gripper_closedness=self.closedness)


class Terminate(Skill):
    """The episode is over: RT-1's terminate_episode, repeated if asked again."""

    def act(self, state: State, scales: Scales) -> Action:
        return Action(mode=Mode.TERMINATE)


class Expert:
    """Runs a plan of skills in order, one action per `act` call, going back to an earlier skill when the current
    one's guard fails."""

    def __init__(self, plan: list[Skill], scales: Scales) -> None:
        if not plan or not isinstance(plan[-1], Terminate):
            raise ValueError("an expert plan must end with Terminate")
        self.plan, self.scales = plan, scales
        self.index = 0
        self.started = False

    @property
    def phase(self) -> str:
        return type(self.plan[self.index]).__name__

    def act(self, state: State) -> Action:
        # Each pass completes a skill or goes back from one; a plan that keeps doing so makes no progress.
        for _ in range(4 * len(self.plan)):
            skill = self.plan[self.index]
            if not skill.holds(state):
                self.index = next((i for i in reversed(range(self.index)) if self.plan[i].holds(state)), 0)
                self.started = False
                continue
            if not self.started:
                skill.start(state)
                self.started = True
            action = skill.act(state, self.scales)
            if action is not None:
                return action
            self.index += 1
            self.started = False
        raise RuntimeError(f"the expert's plan makes no progress in this state (at {self.phase})")


def perturb(action: Action, std: float, scales: Scales, rng: np.random.Generator) -> Action:
    """The action with Gaussian noise on its motion (DART: the robot executes this, the label stays the
    expert's own action, so demonstrations show how the expert recovers from drift).

    The noise is `std` (normalised units) times the commanded translation's peak, on the arm's or base's
    translation (clipped to [-1, 1]), and the same fraction of the largest base rotation per step on the base's
    yaw: full-speed transit drifts, fine alignment near the goal stays exact enough to converge. The mode,
    gripper and arm rotation are unchanged."""
    if action.mode == Mode.ARM:
        command = np.asarray(action.world_vector, np.float64)
        world_vector = command + rng.normal(0.0, std * np.abs(command).max(), 3)
        return dataclasses.replace(action, world_vector=np.clip(world_vector, -1.0, 1.0).astype(np.float32))
    if action.mode == Mode.BASE:
        command = np.asarray(action.base_displacement, np.float64)
        scale = std * np.abs(command).max()
        displacement = command + rng.normal(0.0, scale, 2)
        yaw_noise = rng.normal(0.0, scale) * scales.max_base_rotation_rad / scales.base_rotation
        return dataclasses.replace(
            action,
            base_displacement=np.clip(displacement, -1.0, 1.0).astype(np.float32),
            base_rotation=action.base_rotation + yaw_noise,
        )
    return action


def pick_plan(colour: str) -> list[Skill]:
    """Top-down pick of a cube from the current base pose: above it, down, close, lift.

    Guards send the plan back when the state says a phase failed: the gripper off the cube on the way down
    goes back above it, fingers closed on nothing reopen where they are, a lift without the cube starts over."""

    def heading(state: State) -> float:
        return grasp_heading(state, colour)

    def above(state: State, start: State) -> np.ndarray:
        return cube_in_base(state, colour) + np.array([0.0, 0.0, 0.10])

    def at(state: State, start: State) -> np.ndarray:
        return cube_in_base(state, colour) + np.array([0.0, 0.0, 0.008])

    def lifted(state: State, start: State) -> np.ndarray:
        return np.asarray(start["ee_position"]) + np.array([0.0, 0.0, 0.12])

    def off_grasp_point(state: State) -> np.ndarray:
        return at(state, state) - np.asarray(state["ee_position"])

    def over_cube(state: State) -> bool:
        return bool(np.linalg.norm(off_grasp_point(state)[:2]) < 0.03)

    def fingers_around_cube(state: State) -> bool:
        near = np.linalg.norm(off_grasp_point(state)) < 0.015
        return bool(near and state["gripper"] > GRIPPER_EMPTY)

    def holding(state: State) -> bool:
        between = np.linalg.norm(cube_in_base(state, colour) - np.asarray(state["ee_position"])) < 0.025
        return bool(between and state["gripper"] > GRIPPER_EMPTY)

    return [
        MoveGripper(above, heading, gripper=-1.0, tolerance_m=0.015),
        MoveGripper(at, heading, gripper=-1.0, tolerance_m=0.008, guard=over_cube),
        Grip(+1.0, steps=3, guard=fingers_around_cube),
        MoveGripper(lifted, heading, gripper=+1.0, tolerance_m=0.02, guard=holding),
    ]

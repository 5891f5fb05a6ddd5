"""Forward and inverse kinematics of the arm alone, from the robot's URDF, with pinocchio.

The model is reduced to the arm joints (base and gripper joints locked), and poses are expressed in the
base frame. IK is closed-loop damped least squares over pinocchio's frame Jacobian, clamped to the joint
limits: a target out of reach converges to the nearest reachable pose instead of failing. ROS-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pinocchio as pin


@dataclass(frozen=True)
class IKResult:
    q: np.ndarray  # joint positions in the caller's joint order
    reached: bool  # pose error within tolerance
    error: float  # norm of the remaining 6-D pose error (m, rad)


class ArmKinematics:
    """FK and IK for `arm_joints` between `base_frame` and `ee_frame` of a URDF."""

    def __init__(self, urdf: str | Path, arm_joints: tuple[str, ...], base_frame: str, ee_frame: str) -> None:
        full = pin.buildModelFromUrdf(str(urdf))
        missing = [name for name in arm_joints if not full.existJointName(name)]
        if missing:
            raise ValueError(f"{urdf}: no joints named {missing}")
        locked = [full.getJointId(name) for name in full.names[1:] if name not in arm_joints]
        self.model = pin.buildReducedModel(full, locked, pin.neutral(full))
        self.data = self.model.createData()
        if self.model.nq != len(arm_joints) or self.model.nv != len(arm_joints):
            raise ValueError(f"{urdf}: arm joints must be single-DoF revolute or prismatic joints")
        for frame in (base_frame, ee_frame):
            if not self.model.existFrame(frame):
                raise ValueError(f"{urdf}: no frame named {frame!r}")
        self.arm_joints = tuple(arm_joints)
        # Reduced-model joint order -> caller order, and back.
        self._index = np.array([self.model.getJointId(name) - 1 for name in arm_joints])
        self.lower = self.model.lowerPositionLimit[self._index].copy()
        self.upper = self.model.upperPositionLimit[self._index].copy()
        self.velocity_limit = self.model.velocityLimit[self._index].copy()
        self._base_id = self.model.getFrameId(base_frame)
        self._ee_id = self.model.getFrameId(ee_frame)
        pin.framesForwardKinematics(self.model, self.data, pin.neutral(self.model))
        self._world_base = self.data.oMf[self._base_id].copy()
        if not self._world_base.isApprox(self._base_placement(pin.randomConfiguration(self.model))):
            raise ValueError(f"{urdf}: {base_frame!r} moves with the arm joints; it must be upstream of them")

    def _base_placement(self, q_model: np.ndarray) -> pin.SE3:
        pin.framesForwardKinematics(self.model, self.data, q_model)
        return self.data.oMf[self._base_id].copy()

    def _to_model(self, q: np.ndarray) -> np.ndarray:
        q_model = np.empty(self.model.nq)
        q_model[self._index] = q
        return q_model

    def fk(self, q: np.ndarray) -> pin.SE3:
        """End-effector pose in the base frame for arm joint positions `q` (caller order)."""
        q_model = self._to_model(np.asarray(q, float))
        pin.forwardKinematics(self.model, self.data, q_model)
        world_ee = pin.updateFramePlacement(self.model, self.data, self._ee_id)
        return self._world_base.actInv(world_ee)

    def solve(
        self,
        target: pin.SE3,
        q0: np.ndarray,
        iterations: int = 100,
        tolerance: float = 1e-4,
        damping: float = 1e-3,
        max_step: float = 0.05,
        rest: np.ndarray | None = None,
        rest_gain: float = 0.1,
    ) -> IKResult:
        """Joint positions near `q0` that put the end effector at `target` (base frame), or as close as reachable.

        Each iteration moves at most `max_step` (m, rad) of pose error, which keeps the search from
        overshooting near singularities; the best configuration seen is returned. With a `rest` posture
        (caller order), the arm's redundancy is spent drifting towards it by `rest_gain` per iteration,
        in the Jacobian's null space, so the end effector is not disturbed while the elbow stays clear
        of singular, stretched configurations.
        """
        q_rest = None if rest is None else self._to_model(np.asarray(rest, float))
        world_target = self._world_base * target
        q = np.clip(self._to_model(np.asarray(q0, float)), self.model.lowerPositionLimit, self.model.upperPositionLimit)
        best_q, best_error = q, np.inf
        for _ in range(iterations):
            pin.forwardKinematics(self.model, self.data, q)
            world_ee = pin.updateFramePlacement(self.model, self.data, self._ee_id)
            ee_target = world_ee.actInv(world_target)
            residual = pin.log6(ee_target).vector
            error = float(np.linalg.norm(residual))
            if error < best_error:
                best_q, best_error = q, error
            if error < tolerance:
                break
            jacobian = pin.Jlog6(ee_target.inverse()) @ pin.computeFrameJacobian(
                self.model, self.data, q, self._ee_id, pin.LOCAL
            )
            residual *= min(1.0, max_step / error)
            # Damped least squares: v = J+ e with J+ = J^T (J J^T + lambda I)^-1, the pose error pulled back to joints.
            pseudo_inverse = jacobian.T @ np.linalg.inv(jacobian @ jacobian.T + damping * np.eye(6))
            velocity = pseudo_inverse @ residual
            if q_rest is not None:
                # An exact null-space projector (undamped pseudo-inverse), so the posture never leaks into the pose.
                null_space = np.eye(self.model.nv) - np.linalg.pinv(jacobian) @ jacobian
                velocity += null_space @ (rest_gain * (q_rest - q))
            q = np.clip(
                pin.integrate(self.model, q, velocity), self.model.lowerPositionLimit, self.model.upperPositionLimit
            )
        return IKResult(q=best_q[self._index].copy(), reached=best_error < tolerance, error=best_error)

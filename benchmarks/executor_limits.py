"""The executor's limits under adversarial actions: the worst of every limited quantity it sent, against its limit.

Drives the motion core (robot/motion.py, what rt_action_executor runs) with robot/limit_audit.py's campaign of
hostile actions (random, extreme, denormal, far out of reach, reversing every step, in bursts and with silences
past the watchdog) on a simulated clock, from several starting poses, with an arm that follows its commands and
one that lags (30% of each step), in trajectory and servo mode, for the sim and the generic profile; every
command is measured on the command itself (forward kinematics of the joint target, the twist and its change).

Run: scripts/with_env.sh python benchmarks/executor_limits.py [--actions 300] [--seeds 3]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

from rt_policy_node.robot.kinematics import ArmKinematics
from rt_policy_node.robot.limit_audit import Worst, adversarial_actions, run_campaign
from rt_policy_node.robot.motion import MotionController
from rt_policy_node.robot.profile import RobotProfile, load_profile

DESCRIPTION = Path(__file__).resolve().parents[1] / "src" / "rt_description"
STARTS = (
    np.array([-2.1, 1.6, 1.5, 1.9, -1.6, 1.5, -0.1]),  # near the sim's home
    np.array([0.0, 0.05, 0.0, -0.05, 0.0, 0.05, 0.0]),  # stretched up: singular
    np.array([-1.2, 1.2, 1.0, 0.6, -1.0, 1.2, 0.3]),  # reaching forward
)
# Worst-case field -> (the profile limit it is held to, unit).
LIMITS = {
    "ee_linear_velocity": ("ee_linear_velocity", "m/s"),
    "ee_angular_velocity": ("ee_angular_velocity", "rad/s"),
    "workspace_excursion": (None, "m"),
    "joint_velocity_ratio": (None, "x cap"),
    "joint_acceleration": ("joint_acceleration", "rad/s^2"),
    "base_linear_velocity": ("base_linear_velocity", "m/s"),
    "base_angular_velocity": ("base_angular_velocity", "rad/s"),
    "base_linear_acceleration": ("base_linear_acceleration", "m/s^2"),
    "base_angular_acceleration": ("base_angular_acceleration", "rad/s^2"),
}


def campaign(profile: RobotProfile, kinematics: ArmKinematics, actions: int, seeds: int) -> tuple[Worst, int, int]:
    """The worst of each quantity over every start, arm behaviour, arm mode and seed; commands and violations."""
    worst, commands, violations = Worst(), 0, 0
    for seed in range(seeds):
        for start_index, start in enumerate(STARTS):
            for servo, follow in ((False, 1.0), (False, 0.3), (True, 1.0)):
                controller = MotionController(profile, kinematics, servo=servo, stream_period_s=0.05)
                rng = np.random.default_rng([seed, start_index, int(servo), int(follow * 10)])
                audit = run_campaign(controller, start, adversarial_actions(rng, actions, profile.control_period_s))
                for f in fields(Worst):
                    setattr(worst, f.name, max(getattr(worst, f.name), getattr(audit.worst, f.name)))
                commands += sum(audit.counts.values())
                violations += len(audit.violations)
    return worst, commands, violations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--actions", type=int, default=300, help="actions per campaign")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    for name in ("sim", "generic"):
        profile = load_profile(DESCRIPTION / "profiles" / f"{name}.yaml", lambda _: str(DESCRIPTION))
        kinematics = ArmKinematics(profile.urdf, profile.arm_joints, profile.base_frame, profile.ee_frame)
        started = time.perf_counter()
        worst, commands, violations = campaign(profile, kinematics, args.actions, args.seeds)
        seconds = time.perf_counter() - started
        runs = args.seeds * len(STARTS) * 3
        print(f"{name} profile: {runs} campaigns x {args.actions} actions, {commands} commands, {seconds:.0f} s")
        for field, (limit_name, unit) in LIMITS.items():
            value = getattr(worst, field)
            # The workspace's figure is how far any target lay outside the box; the joint speed's, over its cap.
            limit = getattr(profile.limits, limit_name) if limit_name else float(field == "joint_velocity_ratio")
            print(f"  {field:26} max {value:10.6f} {unit:8} limit {limit:8.4f}")
        print(f"  limits broken: {violations}")


if __name__ == "__main__":
    main()

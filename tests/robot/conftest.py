"""Fixtures of the ROS-free robot tests: the project's URDF and its robot profiles, loaded from the source tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from rt_policy_node.robot.kinematics import ArmKinematics
from rt_policy_node.robot.profile import RobotProfile, load_profile

DESCRIPTION = Path(__file__).resolve().parents[2] / "src" / "rt_description"
URDF = DESCRIPTION / "urdf" / "rt_mobile_manipulator.urdf"
SIM_PROFILE = DESCRIPTION / "profiles" / "sim.yaml"
GENERIC_PROFILE = DESCRIPTION / "profiles" / "generic.yaml"


def find_share(package: str) -> str:
    """rt_description's share directory is its source directory: the URDF and profiles are installed unchanged."""
    assert package == "rt_description"
    return str(DESCRIPTION)


@pytest.fixture(scope="session")
def profile() -> RobotProfile:
    return load_profile(SIM_PROFILE, find_share)


@pytest.fixture(scope="session")
def generic_profile() -> RobotProfile:
    return load_profile(GENERIC_PROFILE, find_share)


@pytest.fixture(scope="session")
def kinematics(profile: RobotProfile) -> ArmKinematics:
    return ArmKinematics(URDF, profile.arm_joints, profile.base_frame, profile.ee_frame)

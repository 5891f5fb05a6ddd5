"""The simulation without ROS: trajectory following, base motion, deterministic resets, rendering."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rt_sim.robot_model import ARM_JOINTS, HOME_ARM_JOINTS
from rt_sim.scene import COLOURS
from rt_sim.simulation import PHYSICS_RATE_HZ, Simulation
from rt_sim.tasks import make_task
from rt_sim.trajectory import JointTrajectory, TrajectoryFollower


@pytest.fixture(scope="module")
def sim() -> Simulation:
    sim = Simulation(image_width=96, image_height=80)
    yield sim
    sim.close()


def seconds(sim: Simulation, duration: float) -> None:
    sim.step(round(duration * PHYSICS_RATE_HZ))


# ---- TrajectoryFollower -------------------------------------------------------------------------


def test_follower_interpolates_linearly_from_the_current_set_point():
    follower = TrajectoryFollower(("a", "b"), np.array([0.0, 1.0]))
    follower.follow(JointTrajectory(["a", "b"], np.array([1.0, 2.0]), np.array([[1.0, 1.0], [1.0, 3.0]])), now=10.0)
    np.testing.assert_allclose(follower.sample(10.5)[0], [0.5, 1.0])
    np.testing.assert_allclose(follower.sample(11.5)[0], [1.0, 2.0])
    np.testing.assert_allclose(follower.sample(11.5)[1], [0.0, 2.0])
    np.testing.assert_allclose(follower.sample(99.0)[0], [1.0, 3.0])
    assert follower.end_time == 12.0


def test_follower_partial_goal_holds_the_other_joints_and_honours_the_stamp():
    follower = TrajectoryFollower(("a", "b"), np.array([0.0, 1.0]))
    follower.follow(JointTrajectory(["b"], np.array([1.0]), np.array([[2.0]]), start_time=5.0), now=4.0)
    np.testing.assert_allclose(follower.sample(4.5)[0], [0.0, 1.0])  # not started yet
    np.testing.assert_allclose(follower.sample(5.5)[0], [0.0, 1.5])


def test_follower_cubic_segments_meet_the_given_velocities():
    follower = TrajectoryFollower(("a",), np.array([0.0]))
    trajectory = JointTrajectory(["a"], np.array([1.0, 2.0]), np.array([[1.0], [2.0]]), np.array([[1.0], [0.0]]))
    follower.follow(trajectory, now=0.0)
    position, velocity = follower.sample(1.0 - 1e-9)
    assert position[0] == pytest.approx(1.0, abs=1e-6)
    assert velocity[0] == pytest.approx(1.0, abs=1e-6)
    assert follower.sample(2.0)[0][0] == pytest.approx(2.0)


@pytest.mark.parametrize(
    "trajectory",
    [
        JointTrajectory(["c"], np.array([1.0]), np.array([[1.0]])),
        JointTrajectory(["a"], np.array([1.0, 1.0]), np.array([[1.0], [2.0]])),
        JointTrajectory(["a"], np.array([1.0]), np.array([[math.nan]])),
        JointTrajectory(["a"], np.array([1.0]), np.array([[1.0, 2.0]])),
        JointTrajectory(["a"], np.array([]), np.zeros((0, 1))),
    ],
    ids=["unknown joint", "times not increasing", "nan", "wrong width", "no points"],
)
def test_follower_rejects_malformed_trajectories_and_keeps_its_motion(trajectory):
    follower = TrajectoryFollower(("a", "b"), np.array([0.5, 0.5]))
    with pytest.raises(ValueError):
        follower.follow(trajectory, now=0.0)
    np.testing.assert_allclose(follower.sample(3.0)[0], [0.5, 0.5])


# ---- physics --------------------------------------------------------------------------------------


def test_arm_follows_a_trajectory_within_tolerance(sim):
    sim.reset(make_task("pick_cube").episode(0).layout)
    start = np.asarray(HOME_ARM_JOINTS)
    goal = start + np.array([0.3, -0.2, 0.2, -0.3, 0.3, 0.2, -0.4])
    sim.follow_arm(JointTrajectory(ARM_JOINTS, np.array([1.0]), goal[None]))
    seconds(sim, 0.5)
    midway = sim.joint_positions()[3:10]
    np.testing.assert_allclose(midway, (start + goal) / 2, atol=0.03)
    seconds(sim, 1.0)
    np.testing.assert_allclose(sim.joint_positions()[3:10], goal, atol=0.005)


def test_base_twist_moves_the_base_by_the_commanded_amount(sim):
    sim.reset(make_task("drive_to_marker").episode(3).layout)
    yaw0 = sim.base_pose()[2]
    sim.set_base_twist(0.3, -0.1, 0.0)
    seconds(sim, 0.5)  # reach the commanded speed
    x1, y1, _ = sim.base_pose()
    seconds(sim, 2.0)
    x2, y2, yaw2 = sim.base_pose()
    forward = np.array([math.cos(yaw0), math.sin(yaw0)])
    left = np.array([-math.sin(yaw0), math.cos(yaw0)])
    moved = np.array([x2 - x1, y2 - y1])
    assert moved @ forward == pytest.approx(0.6, abs=0.01)
    assert moved @ left == pytest.approx(-0.2, abs=0.01)
    assert yaw2 == pytest.approx(yaw0, abs=5e-3)
    np.testing.assert_allclose(sim.base_twist(), (0.3, -0.1, 0.0), atol=5e-3)

    sim.set_base_twist(0.0, 0.0, 0.5)
    seconds(sim, 0.5)
    yaw3 = sim.base_pose()[2]
    seconds(sim, 1.0)
    yaw4 = sim.base_pose()[2]
    assert yaw4 - yaw3 == pytest.approx(0.5, abs=0.01)


def test_reset_is_deterministic_for_a_seed(sim):
    task = make_task("table_pick")
    other = Simulation(image_width=96, image_height=80)
    try:
        for simulation in (sim, other):
            simulation.reset(task.episode(7).layout)
            simulation.set_base_twist(0.2, 0.0, 0.1)
            seconds(simulation, 0.5)
        assert sim.observe()["cubes"] == other.observe()["cubes"]
        np.testing.assert_array_equal(sim.joint_positions(), other.joint_positions())
        np.testing.assert_array_equal(sim.render(), other.render())
    finally:
        other.close()
    sim.reset(task.episode(8).layout)
    assert sim.observe()["cubes"] != other.observe()["cubes"]


def test_rendering_shows_the_coloured_cubes(sim):
    sim.reset(make_task("pick_cube").episode(0).layout)
    image = sim.render()
    assert image.shape == (80, 96, 3) and image.dtype == np.uint8
    for colour, rgba in COLOURS.items():
        target = np.asarray(rgba[:3]) * 255
        close = np.linalg.norm(image.astype(float) - target, axis=-1) < 60
        assert close.sum() >= 2, f"no {colour} cube pixels in view"


def test_cubes_rest_on_the_table(sim):
    sim.reset(make_task("push_cube").episode(2).layout)
    before = sim.observe()["cubes"]
    seconds(sim, 1.0)
    after = sim.observe()["cubes"]
    for colour in COLOURS:
        np.testing.assert_allclose(after[colour]["position"], before[colour]["position"], atol=2e-3)

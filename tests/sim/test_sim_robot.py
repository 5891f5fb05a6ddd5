"""rt_sim's robot and its pacing without ROS: sensor schedule, base command timeout, episodes, lockstep."""

from __future__ import annotations

import threading
import time

import pytest

from rt_policy_node.policies.policy import Mode
from rt_sim.pacing import Lockstep, RealTimePacer
from rt_sim.sim_robot import CLOCK_RATE_HZ, CLOCK_STEPS, SimRobot, focal_length_px, ticks_between
from rt_sim.simulation import PHYSICS_RATE_HZ, Simulation

PERIOD_STEPS = 200  # a 3.33 Hz controller's period at 600 physics steps per second


@pytest.fixture(scope="module")
def sim() -> Simulation:
    sim = Simulation(image_width=64, image_height=48)
    yield sim
    sim.close()


@pytest.fixture
def robot(sim) -> SimRobot:
    robot = SimRobot(sim, camera_rate_hz=10.0, joint_state_rate_hz=60.0)
    robot.reset("pick_cube", 3)
    robot.camera_frame().shown.set()
    return robot


def test_sensors_are_due_at_their_rates_and_at_once_for_a_new_layout(robot):
    due = [robot.tick(0.5) for _ in range(2 * CLOCK_RATE_HZ)]
    assert sum(d.joints for d in due) == 2 * CLOCK_RATE_HZ
    assert sum(d.camera for d in due) == 20 and not any(d.scene for d in due)
    assert robot.steps == 2 * CLOCK_RATE_HZ * CLOCK_STEPS and robot.time_s == pytest.approx(2.0)
    assert sum(robot.tick(0.5, scene_rate_hz=5.0).scene for _ in range(CLOCK_RATE_HZ)) == 5
    robot.reset("pick_cube", 4)
    assert robot.tick(0.5).camera, "the first tick after a reset shows the new layout"
    assert ticks_between(7.0) == 9 and ticks_between(1000.0) == 1


def test_a_base_command_runs_until_its_timeout_and_nan_is_ignored(robot):
    assert not robot.command_base(float("nan"), 0.0, 0.0)
    assert robot.read_joints().base_twist == pytest.approx((0.0, 0.0, 0.0), abs=1e-3)
    assert robot.command_base(0.3, 0.0, 0.0)
    for _ in range(round(0.3 * CLOCK_RATE_HZ)):
        robot.tick(0.5)
    assert robot.read_joints().base_twist[0] == pytest.approx(0.3, abs=0.05)
    x_before = robot.read_joints().base_pose[0]
    for _ in range(CLOCK_RATE_HZ):
        robot.tick(0.5)
    reading = robot.read_joints()
    assert abs(reading.base_twist[0]) < 0.02, "the base stops once the command is 0.5 s old"
    assert reading.base_pose[0] - x_before < 0.3 * 0.5


def test_episodes_and_their_state(robot):
    episode = robot.reset("table_pick", 11, "blue")
    state = robot.task_state()
    assert (state["task"], state["seed"], state["params"]["colour"]) == ("table_pick", 11, "blue")
    assert state["instruction"] == episode.instruction and state["success"] is False
    frame = robot.camera_frame()
    assert frame.image.shape == (48, 64, 3) and frame.success is False and not frame.shown.is_set()
    assert frame.stamp_s == robot.time_s == robot.task_state()["camera_stamp"]
    with pytest.raises(KeyError):
        robot.reset("no_such_task", 0)
    assert focal_length_px(48) > 0


def deliver(lockstep: Lockstep, mode: Mode, step: int, commands: tuple[str, ...], delay_s: float) -> threading.Thread:
    """An action and the executor's commands for it, `delay_s` later, from another thread (as ROS delivers them)."""

    def send() -> None:
        time.sleep(delay_s)
        lockstep.on_action(int(mode), step)
        for kind in commands:
            time.sleep(delay_s)
            lockstep.on_command(kind)

    thread = threading.Thread(target=send)
    thread.start()
    return thread


def test_lockstep_pauses_each_period_until_the_next_action_and_its_commands_arrive():
    lockstep = Lockstep(PERIOD_STEPS)
    waits = []
    assert not lockstep.after_tick(10, 1.0, lambda: waits.append(1), lambda: True), "no actions: paced"
    lockstep.on_action(int(Mode.BASE), 10)
    lockstep.on_command("cmd_vel")
    assert lockstep.after_tick(20, 1.0, lambda: None, lambda: True), "an action with its commands: run unpaced"
    assert lockstep.pause_step == 10 + PERIOD_STEPS
    assert lockstep.after_tick(PERIOD_STEPS, 1.0, lambda: None, lambda: True), "mid-period: no pause"
    thread = deliver(lockstep, Mode.ARM, 10 + PERIOD_STEPS, ("cmd_vel", "arm", "gripper"), 0.05)
    assert lockstep.after_tick(10 + PERIOD_STEPS, 5.0, lambda: waits.append(1), lambda: True)
    thread.join()
    assert lockstep.commands == {"cmd_vel", "arm", "gripper"} and lockstep.handled == lockstep.actions == 2
    assert waits, "the loop is called back while it waits (to repeat /clock)"


def test_lockstep_runs_on_after_its_timeout_and_stops_engaging_on_terminate():
    lockstep = Lockstep(PERIOD_STEPS)
    lockstep.on_action(int(Mode.ARM), 0)
    lockstep.on_command("cmd_vel")
    start = time.monotonic()
    assert lockstep.after_tick(10, 0.2, lambda: None, lambda: True), "the arm's commands never came: run on"
    assert time.monotonic() - start >= 0.2
    start = time.monotonic()
    assert not lockstep.after_tick(PERIOD_STEPS, 0.2, lambda: None, lambda: True), "no next action: paced again"
    assert time.monotonic() - start >= 0.2
    lockstep.on_action(int(Mode.TERMINATE), 20)
    lockstep.on_command("cmd_vel")
    assert not lockstep.after_tick(30, 1.0, lambda: None, lambda: True)
    assert not lockstep.after_tick(30 + PERIOD_STEPS, 1.0, lambda: None, lambda: True), "no pause after TERMINATE"
    lockstep.on_action(99, 40)
    assert lockstep.mode == Mode.TERMINATE, "an unknown mode is a TERMINATE"


def test_real_time_pacer_waits_for_sim_time_and_drops_a_long_lag():
    pacer = RealTimePacer(0, PHYSICS_RATE_HZ)
    start = time.monotonic()
    pacer.pace(round(0.1 * PHYSICS_RATE_HZ), rate=1.0)
    assert time.monotonic() - start >= 0.1
    pacer.wall -= 10.0  # ten seconds behind
    pacer.pace(round(0.2 * PHYSICS_RATE_HZ), rate=1.0)
    assert pacer.steps == round(0.2 * PHYSICS_RATE_HZ) and time.monotonic() - pacer.wall < 1.0

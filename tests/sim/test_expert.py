"""The scripted expert through the real stack: rt_expert -> rt/action -> rt_action_executor -> rt_sim (lockstep)."""

from __future__ import annotations

import json
import shutil

import pytest
from harness import NodeProcess, Probe, wait_for
from sim_client import reset, task_state
from std_msgs.msg import String

from rt_msgs.msg import RTAction
from rt_policy_node.policies.policy import Mode
from rt_policy_node.ros.qos import LATCHED, RELIABLE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("rt_action_executor") is None, reason="rt_action_executor is not built"),
]
# Modes each task's expert must use, in order of first appearance.
MODES = {
    "pick_cube": [Mode.ARM, Mode.TERMINATE],
    "push_cube": [Mode.ARM, Mode.TERMINATE],
    "drive_to_marker": [Mode.BASE, Mode.TERMINATE],
    "table_pick": [Mode.BASE, Mode.ARM, Mode.TERMINATE],
}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    logs = tmp_path_factory.mktemp("expert")
    sim_time = {"use_sim_time": True}
    processes = [
        NodeProcess(
            "rt_sim",
            "rt_sim",
            logs,
            params={**sim_time, "real_time_factor": 0.0, "image_width": 64, "image_height": 48},
        ),
        NodeProcess(
            "rt_action_executor",
            "rt_action_executor",
            logs,
            config="executor.yaml",
            params={**sim_time, "autostart": True},
        ),
        NodeProcess("rt_expert", "rt_expert", logs, params=sim_time),
    ]
    probe = Probe("expert_probe")
    yield probe, processes
    probe.close()
    # Every process is stopped before any is judged: one failure must not leave the others running.
    failures = []
    for process in processes:
        try:
            code = process.stop()
        except AssertionError as err:
            failures.append(str(err))
            continue
        if code != 0:
            failures.append(f"{process.node_name} exited with {code}:\n{process.output()}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("task", list(MODES))
def test_expert_succeeds_through_the_executor(stack, task):
    probe, processes = stack
    actions = probe.collect(RTAction, "rt/action", RELIABLE)
    instruction = probe.publisher(String, "rt/instruction", LATCHED)
    wait_for(lambda: probe.node.count_publishers("arm_controller/joint_trajectory") >= 1, 60, "the executor")
    wait_for(lambda: probe.node.count_subscribers("rt/instruction") >= 1, 60, "the expert")
    episode = json.loads(reset(probe, task, seed=3).message)
    assert task_state(probe)["success"] is False
    instruction.publish(String(data=episode["instruction"]))
    wait_for(lambda: actions and actions[-1].mode == Mode.TERMINATE, 240, f"the expert to finish {task}")
    assert all(p.alive() for p in processes)
    state = task_state(probe)
    assert state["success"], f"{task}: {episode['instruction']!r} not achieved after {len(actions)} steps"
    modes = list(dict.fromkeys(Mode(a.mode) for a in actions))
    assert modes == MODES[task]
    assert all(a.instruction == episode["instruction"] for a in actions)
    assert len(actions) <= state["max_steps"]

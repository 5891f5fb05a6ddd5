"""sim/reset publishes the new scene before it answers, on its own sim (a second one would share /clock)."""

from __future__ import annotations

import shutil

import pytest
from harness import NodeProcess, Probe, wait_for
from rosgraph_msgs.msg import Clock
from sim_client import reset, task_state

from rt_policy_node.ros.conversions import stamp_to_seconds

pytestmark = pytest.mark.skipif(shutil.which("rt_sim") is None, reason="rt_sim is not built")


def test_a_reset_publishes_the_new_scene_before_it_answers(tmp_path):
    """Whoever acts after a reset gets a frame of the new scene, not the last periodic frame of the old one."""
    # One frame per 5 s of sim time: without the reset's own frame, the newest one would be seconds old.
    params = {"image_width": 96, "image_height": 80, "camera_rate_hz": 0.2}
    process = NodeProcess("rt_sim", "rt_sim", tmp_path, params=params)
    probe = Probe("reset_probe")
    try:
        clock = probe.collect(Clock, "/clock", 50)
        wait_for(lambda: clock and stamp_to_seconds(clock[-1].clock) > 1.0, 60, "a second of sim time")
        for seed in range(2):
            before = stamp_to_seconds(clock[-1].clock)
            assert reset(probe, "pick_cube", seed).success
            assert task_state(probe)["camera_stamp"] >= before
    finally:
        probe.close()
        assert process.stop() == 0, process.output()

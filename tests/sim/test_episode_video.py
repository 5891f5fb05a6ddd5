"""The episode video: third-person view and robot camera side by side, with instruction, mode and step."""

from itertools import pairwise

import numpy as np

from rt_policy_node.data.synthetic import write_synthetic_episodes
from rt_policy_node.policies.policy import Mode
from rt_sim.episode_video import CAMERA_PANEL_WIDTH, compose_frame, episode_frames, read_episode_streams


def test_a_frame_puts_the_scene_beside_the_camera_and_the_captions():
    scene = np.full((360, 640, 3), 90, np.uint8)
    camera = np.zeros((128, 160, 3), np.uint8)
    camera[:, :, 0] = 255
    frame = compose_frame(scene, camera, "go to the table and pick up the red cube", Mode.BASE, 7)
    assert frame.shape == (360, 640 + CAMERA_PANEL_WIDTH, 3)
    np.testing.assert_array_equal(frame[:, :640], scene)
    panel = frame[:, 640:]
    assert (panel[..., 0] > 200).sum() > 0.5 * 128 * 160, "the robot's camera is drawn, enlarged"
    green = (panel[..., 1] > 150) & (panel[..., 0] < 100)
    assert green.sum() > 1000, "the BASE mode badge"
    without = compose_frame(scene, camera, "go to the table and pick up the red cube", None, 0)
    assert not np.array_equal(frame, without)


def test_a_bag_without_scene_frames_shows_the_robot_camera(tmp_path):
    (bag,) = write_synthetic_episodes(tmp_path, episodes=1, steps=5, frame_size=(48, 64))
    scene, camera, actions = read_episode_streams(bag)
    assert scene == [] and len(camera) >= 5 and len(actions) == 5
    assert all(a[0] <= b[0] for a, b in pairwise(camera))
    frames = episode_frames(bag)
    assert len(frames) == len(camera) and frames[0].shape == (360, CAMERA_PANEL_WIDTH, 3)

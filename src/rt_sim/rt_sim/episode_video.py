"""An episode as a video a person wants to watch: the simulator's third-person view beside the robot's camera,
with the instruction, the policy's current mode and the step written on it.

Everything comes from the episode's bag: scene_camera/image_raw (the sim's fixed view, when it published one),
camera/image_raw (what the policy saw) and rt/action (each action's mode; its header stamp is the frame it was
computed from). One video frame per scene frame; a bag without scene frames gives the robot's camera alone.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from rosbags.highlevel import AnyReader

from rt_policy_node.data.bag_io import read_episode
from rt_policy_node.images import image_to_rgb
from rt_policy_node.policies.policy import Mode
from rt_sim.bag_video import CAMERA_TOPIC

SCENE_TOPIC = "/scene_camera/image_raw"
ACTION_TOPIC = "/rt/action"
MODE_LABELS = {Mode.TERMINATE: "TERMINATE", Mode.ARM: "ARM", Mode.BASE: "BASE"}
MODE_COLOURS = {Mode.TERMINATE: (200, 60, 60), Mode.ARM: (60, 140, 220), Mode.BASE: (60, 170, 90)}
BACKGROUND = (24, 24, 28)
CAMERA_PANEL_WIDTH = 320
MIN_HEIGHT = 360
MARGIN = 12


def _stamp(msg) -> int:
    return int(msg.header.stamp.sec) * 1_000_000_000 + int(msg.header.stamp.nanosec)


def read_episode_streams(bag: Path) -> tuple[list, list, list]:
    """(scene frames, camera frames, actions) of a bag as time-ordered (stamp ns, value) lists; an action's value
    is its mode."""
    streams: dict[str, list] = {SCENE_TOPIC: [], CAMERA_TOPIC: [], ACTION_TOPIC: []}
    with AnyReader([bag]) as reader:
        connections = [c for c in reader.connections if c.topic in streams]
        for connection, _, raw in reader.messages(connections=connections):
            msg = reader.deserialize(raw, connection.msgtype)
            if connection.topic == ACTION_TOPIC:
                value = int(msg.mode)
            else:
                value = image_to_rgb(int(msg.height), int(msg.width), msg.encoding, int(msg.step), msg.data)
            streams[connection.topic].append((_stamp(msg), value))
    return tuple(
        sorted(streams[topic], key=lambda item: item[0]) for topic in (SCENE_TOPIC, CAMERA_TOPIC, ACTION_TOPIC)
    )


def _latest(items: list, stamp: int):
    """The last (stamp, value) at or before `stamp`, or None."""
    found = None
    for item in items:
        if item[0] > stamp:
            break
        found = item
    return found


def compose_frame(
    scene: np.ndarray | None, camera: np.ndarray | None, instruction: str, mode: int | None, step: int
) -> np.ndarray:
    """One video frame: the scene view (if any) on the left, the robot's camera and the captions on the right."""
    scene_h, scene_w = scene.shape[:2] if scene is not None else (0, 0)
    height = max(scene_h, MIN_HEIGHT)
    canvas = Image.new("RGB", (scene_w + CAMERA_PANEL_WIDTH, height), BACKGROUND)
    if scene is not None:
        canvas.paste(Image.fromarray(scene), (0, (height - scene_h) // 2))
    draw = ImageDraw.Draw(canvas)
    small, large = ImageFont.load_default(size=15), ImageFont.load_default(size=22)
    x, y = scene_w + MARGIN, MARGIN
    if camera is not None:
        width = CAMERA_PANEL_WIDTH - 2 * MARGIN
        view = Image.fromarray(camera).resize((width, round(camera.shape[0] * width / camera.shape[1])))
        draw.text((x, y), "robot camera", font=small, fill=(170, 170, 170))
        y += 20
        canvas.paste(view, (x, y))
        y += view.height + MARGIN
    for line in textwrap.wrap(f'"{instruction}"', 34)[:3]:
        draw.text((x, y), line, font=small, fill=(235, 235, 235))
        y += 19
    y += 6
    if mode is not None:
        draw.rounded_rectangle((x, y, x + 150, y + 32), radius=6, fill=MODE_COLOURS.get(mode, (120, 120, 120)))
        draw.text((x + 10, y + 4), MODE_LABELS.get(mode, str(mode)), font=large, fill=(255, 255, 255))
    draw.text((x + 165, y + 6), f"step {step}", font=small, fill=(235, 235, 235))
    return np.asarray(canvas)


def episode_frames(bag: Path) -> list[np.ndarray]:
    """The episode's video frames (see the module doc)."""
    scene, camera, actions = read_episode_streams(bag)
    instruction = read_episode(bag).instruction
    clock = scene if scene else camera
    frames = []
    for stamp, scene_view in clock:
        seen = _latest(camera, stamp)
        done = [a for a in actions if a[0] <= stamp]
        mode = done[-1][1] if done else None
        shown = scene_view if scene else None
        frames.append(compose_frame(shown, seen[1] if seen else None, instruction, mode, len(done)))
    return frames

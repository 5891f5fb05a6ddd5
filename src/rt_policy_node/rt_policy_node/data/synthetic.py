"""Synthetic episodes for exercising the data and training pipeline (and benchmarks) without a simulator.

Each episode is a real episode bag written by the recorder's own `EpisodeWriter`: a camera at
`frames_per_action` times the action rate shows a coloured square drifting on a grey background, and each
RTAction (stamped with the frame it "saw") points the arm from the square towards the image centre, closes
the gripper in the second half and terminates at the end. A frame's pixel (0, 0) holds its index modulo
256, so tests can tell which frame a step was given.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
from rosbags.typesys.store import Typestore

from rt_policy_node.data.bag_io import EpisodeInfo, EpisodeWriter, episode_dir_name, make_typestore
from rt_policy_node.policies.action_tokenizer import ActionTokenizer
from rt_policy_node.policies.policy import Action, Mode

COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 70, 220), "yellow": (230, 210, 40)}
FRAME_PERIOD_NS = 100_000_000  # a 10 Hz camera
ACTION_LATENCY_NS = 40_000_000  # an action reaches the recorder this long after its frame


def project_typestore() -> Typestore:
    """The recorder's typestore: ROS 2 Kilted's types plus the installed rt_msgs."""
    from ament_index_python.packages import get_package_share_directory

    return make_typestore({"rt_msgs": get_package_share_directory("rt_msgs")})


def _stamp(typestore: Typestore, ns: int) -> object:
    return typestore.types["builtin_interfaces/msg/Time"](sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _header(typestore: Typestore, ns: int, frame_id: str) -> object:
    return typestore.types["std_msgs/msg/Header"](stamp=_stamp(typestore, ns), frame_id=frame_id)


def _put(writer: EpisodeWriter, topic: str, timestamp_ns: int, msg: object) -> None:
    writer.write(topic, msg.__msgtype__, timestamp_ns, writer.typestore.serialize_cdr(msg, msg.__msgtype__))


def _frame(index: int, colour: tuple[int, int, int], centre: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    image = np.full((height, width, 3), 120, np.uint8)
    half = max(2, min(height, width) // 8)
    y, x = np.clip(centre.round().astype(int), half, [height - half, width - half])
    image[y - half : y + half, x - half : x + half] = colour
    image[0, 0] = index % 256
    return image


def write_synthetic_episode(
    directory: str | Path,
    typestore: Typestore,
    colour: str = "red",
    steps: int = 8,
    seed: int = 0,
    frame_size: tuple[int, int] = (48, 64),
    frames_per_action: int = 3,
    encoding: str = "rgb8",
    tokenized: bool = False,
    start_ns: int = 1_000_000_000,
) -> EpisodeInfo:
    """Writes one episode of `steps` actions into the new directory `directory` and returns its sidecar.

    `encoding` is rgb8 or bgr8; `tokenized` sends the actions' tokens as a learned policy would.
    """
    if encoding not in ("rgb8", "bgr8"):
        raise ValueError(f"encoding must be rgb8 or bgr8, got {encoding!r}")
    rng = np.random.default_rng(seed)
    types = typestore.types
    instruction = f"move to the {colour} square"
    height, width = frame_size
    centre = np.array([height / 2, width / 2])
    position = rng.uniform([0, 0], [height, width])
    drift = rng.normal(0.0, 1.0, 2)
    tokenizer = ActionTokenizer()
    writer = EpisodeWriter(
        directory, typestore, EpisodeInfo(Path(directory).name, 0, instruction, "sim", start_ns / 1e9)
    )
    string = types["std_msgs/msg/String"]
    _put(writer, "/rt/instruction", start_ns, string(data=instruction))
    image_type, action_type = types["sensor_msgs/msg/Image"], types["rt_msgs/msg/RTAction"]
    for index in range(steps * frames_per_action):
        stamp = start_ns + index * FRAME_PERIOD_NS
        position = position + drift
        pixels = _frame(index, COLOURS[colour], position, frame_size)
        if encoding == "bgr8":
            pixels = np.ascontiguousarray(pixels[..., ::-1])
        image = image_type(
            header=_header(typestore, stamp, "head_camera_optical_frame"),
            height=height,
            width=width,
            encoding=encoding,
            is_bigendian=0,
            step=width * 3,
            data=pixels.reshape(-1),
        )
        _put(writer, "/camera/image_raw", stamp, image)
        if index % frames_per_action:
            continue
        step = index // frames_per_action
        direction = (centre - position) / max(height, width)
        action = Action(
            world_vector=np.array([direction[1], -direction[0], 0.0], np.float32).clip(-1, 1),
            gripper_closedness=1.0 if step >= steps // 2 else -1.0,
            mode=Mode.TERMINATE if step == steps - 1 else Mode.ARM,
        )
        fields = action.as_dict()
        tokens = tokenizer.encode(fields).astype(np.uint8) if tokenized else np.zeros(0, np.uint8)
        msg = action_type(
            header=_header(typestore, stamp, "base_link"),
            world_vector=fields["world_vector"],
            rotation_delta=fields["rotation_delta"],
            gripper_closedness=np.float32(action.gripper_closedness),
            base_displacement=fields["base_displacement"],
            base_rotation=np.float32(action.base_rotation),
            mode=np.uint8(action.mode),
            tokens=tokens,
            instruction=instruction,
            inference_ms=np.float32(0.0),
        )
        _put(writer, "/rt/action", stamp + ACTION_LATENCY_NS, msg)
    end = start_ns + steps * frames_per_action * FRAME_PERIOD_NS
    return writer.close("terminated", end / 1e9)


def write_synthetic_episodes(
    output_dir: str | Path, episodes: int, steps: int = 8, seed: int = 0, **kwargs: object
) -> list[Path]:
    """`episodes` synthetic episodes in the recorder's layout under `output_dir`, cycling through the colours."""
    typestore = project_typestore()
    names = list(COLOURS)
    paths = []
    for i in range(episodes):
        path = Path(output_dir) / episode_dir_name(datetime(2025, 1, 1), i)
        write_synthetic_episode(path, typestore, names[i % len(names)], steps, seed + i, **kwargs)
        paths.append(path)
    return paths

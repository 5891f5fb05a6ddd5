"""rt-bag-video: the camera frames of a recorded episode as a GIF or MP4 (for docs and quick review).

    rt-bag-video data/pick_cube/episode_20250101-120000_0000 docs/media/pick_cube.gif [--fps 5 --scale 0.5]

Reads the bag with rosbags' AnyReader (the message definitions stored in the bag; no ROS needed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
from PIL import Image
from rosbags.highlevel import AnyReader

from rt_policy_node.images import image_to_rgb

CAMERA_TOPIC = "/camera/image_raw"


def read_frames(bag: Path, topic: str = CAMERA_TOPIC, every: int = 1) -> list[np.ndarray]:
    """Every `every`-th image on `topic` as HxWx3 uint8 RGB, in recording order."""
    with AnyReader([bag]) as reader:
        connections = [c for c in reader.connections if c.topic == topic]
        if not connections:
            raise ValueError(f"{bag} has no {topic} messages; topics: {sorted({c.topic for c in reader.connections})}")
        frames = []
        for index, (connection, _, raw) in enumerate(reader.messages(connections=connections)):
            if index % every:
                continue
            msg = reader.deserialize(raw, connection.msgtype)
            frames.append(image_to_rgb(int(msg.height), int(msg.width), msg.encoding, int(msg.step), msg.data))
    return frames


def downscale(frame: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter downscaling by a whole factor (keeps colours clean for GIF palettes)."""
    if factor == 1:
        return frame
    h, w = frame.shape[0] // factor * factor, frame.shape[1] // factor * factor
    blocks = frame[:h, :w].reshape(h // factor, factor, w // factor, factor, 3).astype(np.float32)
    return blocks.mean(axis=(1, 3)).round().astype(np.uint8)


def write_video(frames: list[np.ndarray], out: Path, fps: float) -> None:
    """GIF (looping) or MP4 (H.264 via imageio-ffmpeg), by the file suffix."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".gif":
        # A per-frame octree palette keeps the small saturated cubes their colour; no dithering noise.
        images = [
            Image.fromarray(f).quantize(colors=256, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
            for f in frames
        ]
        images[0].save(out, save_all=True, append_images=images[1:], duration=round(1000.0 / fps), loop=0)
    elif out.suffix.lower() == ".mp4":
        imageio.mimsave(out, frames, fps=fps, codec="libx264", quality=6, macro_block_size=8)
    else:
        raise ValueError(f"output must end in .gif or .mp4, got {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rt-bag-video", description=__doc__.split("\n\n")[0])
    parser.add_argument("bag", type=Path, help="episode directory (rosbag2, MCAP)")
    parser.add_argument("out", type=Path, help="output .gif or .mp4")
    parser.add_argument("--topic", default=CAMERA_TOPIC)
    parser.add_argument("--every", type=int, default=2, help="keep every n-th frame")
    parser.add_argument("--downscale", type=int, default=1, help="shrink frames by this whole factor")
    parser.add_argument("--fps", type=float, default=5.0, help="playback frames per second")
    args = parser.parse_args(argv)
    frames = [downscale(f, args.downscale) for f in read_frames(args.bag, args.topic, max(1, args.every))]
    write_video(frames, args.out, args.fps)
    print(f"rt-bag-video: {len(frames)} frames -> {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")
    return 0

"""Camera message fields -> HxWx3 uint8 RGB numpy arrays, without copying where the layout allows.

ROS-free: takes the fields of sensor_msgs/Image and CompressedImage, so it is testable without rclpy.
Every way a message can be malformed raises `ImageError`, never anything else.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage

# encoding -> (bytes per pixel, the byte of each of R, G, B within a pixel, or None when that is 0, 1, 2).
ENCODINGS: dict[str, tuple[int, tuple[int, int, int] | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, None),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}
COMPRESSED_FORMATS = ("jpeg", "jpg", "png")


class ImageError(ValueError):
    """A camera message that cannot be turned into an image; the text says why."""


@dataclass(frozen=True)
class ImageLayout:
    """The checked geometry of a raw image message."""

    height: int
    width: int
    step: int
    pixel_bytes: int
    channels: tuple[int, int, int] | None


def check_image(
    height: int, width: int, encoding: str, step: int, data_len: int, max_pixels: int | None = None
) -> ImageLayout:
    """Validates the fields of a sensor_msgs/Image in O(1), before any pixel is touched; images over
    `max_pixels` are refused.

    `is_bigendian` is not needed: every accepted encoding has one-byte channels, which have no byte order.
    """
    if encoding not in ENCODINGS:
        raise ImageError(f"unsupported encoding {encoding!r} (expected one of {', '.join(ENCODINGS)})")
    pixel_bytes, channels = ENCODINGS[encoding]
    if height <= 0 or width <= 0:
        raise ImageError(f"empty image ({width}x{height})")
    if max_pixels is not None and height * width > max_pixels:
        raise ImageError(f"{width}x{height} image exceeds the {max_pixels}-pixel limit")
    if step < width * pixel_bytes:
        raise ImageError(
            f"step {step} is shorter than a row of {width} {encoding} pixels ({width * pixel_bytes} bytes)"
        )
    if data_len != height * step:
        raise ImageError(f"data is {data_len} bytes, expected height*step = {height}*{step} = {height * step}")
    return ImageLayout(height, width, step, pixel_bytes, channels)


def image_to_rgb(height: int, width: int, encoding: str, step: int, data: bytes | memoryview) -> np.ndarray:
    """Raw image fields -> HxWx3 uint8 RGB.

    rgb8 and rgba8 come back as views of `data` (row padding and alpha skipped by strides, no copy);
    bgr8, bgra8 and mono8 need one copy to reorder or replicate channels.
    """
    buffer = np.frombuffer(data, dtype=np.uint8)
    layout = check_image(height, width, encoding, step, buffer.size)
    rows = buffer.reshape(layout.height, layout.step)[:, : layout.width * layout.pixel_bytes]
    pixels = rows.reshape(layout.height, layout.width, layout.pixel_bytes)
    if layout.channels is None:
        return pixels[..., :3]
    return pixels[..., list(layout.channels)]


def compressed_to_rgb(fmt: str, data: bytes | memoryview, max_pixels: int) -> np.ndarray:
    """A CompressedImage's JPEG or PNG payload -> HxWx3 uint8 RGB; images over `max_pixels` are refused."""
    kind = fmt.lower()
    if not any(name in kind for name in COMPRESSED_FORMATS):
        raise ImageError(f"unsupported compressed format {fmt!r} (expected JPEG or PNG)")
    try:
        with PILImage.open(io.BytesIO(data)) as image:
            if image.format not in ("JPEG", "PNG"):
                raise ImageError(f"payload is {image.format}, expected JPEG or PNG")
            if image.width * image.height > max_pixels:
                raise ImageError(f"{image.width}x{image.height} image exceeds the {max_pixels}-pixel limit")
            return np.asarray(image.convert("RGB"))
    except ImageError:
        raise
    except Exception as err:  # PIL signals corrupt payloads with many exception types
        raise ImageError(f"cannot decode {fmt!r} payload: {err}") from None

"""Camera message fields -> HxWx3 uint8 RGB numpy arrays, without copying where the layout allows.

ROS-free: takes the fields of sensor_msgs/Image and CompressedImage, so it is testable without rclpy.
Every way a message can be malformed raises `ImageError`, never anything else, and a frame's size is
checked before any pixel is decoded: from the fields of a raw image, from the header of a JPEG or PNG.

Encodings: rgb8, bgr8, rgba8, bgra8 and mono8 are views or one channel reorder; the others are converted
by cv_bridge where it is installed (the ROS-native converter) and by numpy otherwise:
- mono16, rgb16, bgr16, rgba16, bgra16: 16-bit channels in the message's byte order, scaled to 8 bits as
  cv_bridge does (x 255/65535, rounded);
- yuv422 (UYVY byte order) and yuv422_yuy2 (YUYV): ITU-R BT.601 with video range (Y 16-235), OpenCV's
  coefficients; the width must be even;
- bayer_rggb8, bayer_bggr8, bayer_gbrg8, bayer_grbg8 and their 16-bit forms: bilinear demosaicing (each
  missing colour the mean of its nearest samples of that colour); at least 2x2 pixels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
from PIL import Image as PILImage

try:
    from cv_bridge import CvBridge, CvBridgeError
except ImportError:  # not part of the pip-installed ROS; numpy converts then
    CvBridge = None

# encoding -> (bytes per pixel, the byte of each of R, G, B within a pixel, or None when that is 0, 1, 2).
ENCODINGS: dict[str, tuple[int, tuple[int, int, int] | None]] = {
    "rgb8": (3, None),
    "bgr8": (3, (2, 1, 0)),
    "rgba8": (4, None),
    "bgra8": (4, (2, 1, 0)),
    "mono8": (1, (0, 0, 0)),
}
# encoding -> (bytes per pixel, the 16-bit channel of each of R, G, B within a pixel).
ENCODINGS_16: dict[str, tuple[int, tuple[int, int, int]]] = {
    "mono16": (2, (0, 0, 0)),
    "rgb16": (6, (0, 1, 2)),
    "bgr16": (6, (2, 1, 0)),
    "rgba16": (8, (0, 1, 2)),
    "bgra16": (8, (2, 1, 0)),
}
# encoding -> the byte positions of Y, U, V within each 4-byte pair of pixels (two Y, one U and V between them).
YUV422 = {"yuv422": ((1, 3), 0, 2), "yuv422_yuy2": ((0, 2), 1, 3)}
BAYER = {
    f"bayer_{pattern}{bits}": (bits // 8, pattern) for pattern in ("rggb", "bggr", "gbrg", "grbg") for bits in (8, 16)
}
SUPPORTED_ENCODINGS = (*ENCODINGS, *ENCODINGS_16, *YUV422, *BAYER)
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


def pixel_bytes(encoding: str) -> int:
    """Bytes per pixel of a supported encoding; ImageError for any other."""
    for table in (ENCODINGS, ENCODINGS_16, BAYER):
        if encoding in table:
            return table[encoding][0]
    if encoding in YUV422:
        return 2
    raise ImageError(f"unsupported encoding {encoding!r} (expected one of {', '.join(SUPPORTED_ENCODINGS)})")


def check_size(width: int, height: int, max_pixels: int | None) -> None:
    if height <= 0 or width <= 0:
        raise ImageError(f"empty image ({width}x{height})")
    if max_pixels is not None and height * width > max_pixels:
        raise ImageError(f"{width}x{height} image exceeds the {max_pixels}-pixel limit")


def check_image(
    height: int, width: int, encoding: str, step: int, data_len: int, max_pixels: int | None = None
) -> ImageLayout:
    """Validates the fields of a sensor_msgs/Image in O(1), before any pixel is touched; images over
    `max_pixels` are refused."""
    size = pixel_bytes(encoding)
    check_size(width, height, max_pixels)
    if step < width * size:
        raise ImageError(f"step {step} is shorter than a row of {width} {encoding} pixels ({width * size} bytes)")
    if data_len != height * step:
        raise ImageError(f"data is {data_len} bytes, expected height*step = {height}*{step} = {height * step}")
    if encoding in YUV422 and width % 2:
        raise ImageError(f"{encoding} needs an even width, got {width}")
    if encoding in BAYER and (width < 2 or height < 2):
        raise ImageError(f"{encoding} needs at least 2x2 pixels, got {width}x{height}")
    return ImageLayout(height, width, step, size)


def image_to_rgb(
    height: int, width: int, encoding: str, step: int, data: bytes | memoryview, is_bigendian: bool = False
) -> np.ndarray:
    """Raw image fields -> HxWx3 uint8 RGB.

    rgb8 and rgba8 come back as views of `data` (row padding and alpha skipped by strides, no copy);
    bgr8, bgra8 and mono8 need one copy to reorder or replicate channels; the other encodings are converted.
    """
    buffer = np.frombuffer(data, dtype=np.uint8)
    layout = check_image(height, width, encoding, step, buffer.size)
    rows = buffer.reshape(layout.height, layout.step)[:, : layout.width * layout.pixel_bytes]
    if encoding in ENCODINGS:
        channels = ENCODINGS[encoding][1]
        pixels = rows.reshape(layout.height, layout.width, layout.pixel_bytes)
        return pixels[..., :3] if channels is None else pixels[..., list(channels)]
    if CvBridge is not None:
        return _cv_bridge_rgb(layout, encoding, data, is_bigendian)
    if encoding in YUV422:
        return _yuv422_to_rgb(rows, *YUV422[encoding])
    sixteen_bit = encoding in ENCODINGS_16 or BAYER.get(encoding, (1,))[0] == 2
    samples = _to_8_bits(rows, is_bigendian) if sixteen_bit else rows
    if encoding in BAYER:
        return _demosaic(samples, BAYER[encoding][1])
    channels = ENCODINGS_16[encoding][1]
    return samples.reshape(layout.height, layout.width, -1)[..., list(channels)]


def _cv_bridge_rgb(layout: ImageLayout, encoding: str, data: bytes | memoryview, is_bigendian: bool) -> np.ndarray:
    """cv_bridge's own conversion of a message with these (checked) fields."""
    msg = SimpleNamespace(
        height=layout.height,
        width=layout.width,
        encoding=encoding,
        is_bigendian=is_bigendian,
        step=layout.step,
        data=bytes(data),
    )
    try:
        return np.asarray(CvBridge().imgmsg_to_cv2(msg, "rgb8"))
    except CvBridgeError as err:
        raise ImageError(f"cv_bridge cannot convert {encoding}: {err}") from None


def _to_8_bits(rows: np.ndarray, is_bigendian: bool) -> np.ndarray:
    """Rows of 16-bit samples (as bytes, in the given byte order) -> uint8 samples, x 255/65535 rounded."""
    samples = rows.view(">u2" if is_bigendian else "<u2").astype(np.uint32)
    return ((samples * 255 + 65535 // 2) // 65535).astype(np.uint8)


def _yuv422_to_rgb(rows: np.ndarray, y_bytes: tuple[int, int], u_byte: int, v_byte: int) -> np.ndarray:
    """Packed 4:2:2 YUV rows -> RGB (BT.601, video range, as OpenCV's COLOR_YUV2RGB_UYVY/YUYV)."""
    pairs = rows.reshape(rows.shape[0], -1, 4).astype(np.float32)
    luma = np.stack([pairs[..., y_bytes[0]], pairs[..., y_bytes[1]]], axis=-1).reshape(rows.shape[0], -1) - 16.0
    u = np.repeat(pairs[..., u_byte], 2, axis=1) - 128.0
    v = np.repeat(pairs[..., v_byte], 2, axis=1) - 128.0
    y = 1.164 * luma
    rgb = np.stack([y + 1.596 * v, y - 0.391 * u - 0.813 * v, y + 2.018 * u], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _demosaic(raw: np.ndarray, pattern: str) -> np.ndarray:
    """A Bayer mosaic (`pattern`: the colours of the top-left 2x2 cell, row by row) -> RGB, bilinearly: each
    colour a pixel lacks is the weighted mean of that colour's samples among its 8 neighbours."""
    height, width = raw.shape
    values = raw.astype(np.float32)
    kernel = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])

    def neighbourhood_sum(image: np.ndarray) -> np.ndarray:
        padded = np.pad(image, 1)
        return sum(kernel[dy, dx] * padded[dy : dy + height, dx : dx + width] for dy in range(3) for dx in range(3))

    rgb = np.empty((height, width, 3), np.float32)
    for channel, colour in enumerate("rgb"):
        mask = np.zeros((height, width), np.float32)
        for cell, letter in enumerate(pattern):
            if letter == colour:
                mask[cell // 2 :: 2, cell % 2 :: 2] = 1.0
        interpolated = neighbourhood_sum(values * mask) / neighbourhood_sum(mask)
        rgb[..., channel] = np.where(mask > 0, values, interpolated)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _open_compressed(fmt: str, data: bytes | memoryview, max_pixels: int) -> PILImage.Image:
    """The JPEG or PNG payload opened (only its header read, nothing decoded) and its size checked."""
    kind = fmt.lower()
    if not any(name in kind for name in COMPRESSED_FORMATS):
        raise ImageError(f"unsupported compressed format {fmt!r} (expected JPEG or PNG)")
    try:
        image = PILImage.open(io.BytesIO(data))
    except Exception as err:  # PIL signals corrupt payloads with many exception types
        raise ImageError(f"cannot decode {fmt!r} payload: {err}") from None
    if image.format not in ("JPEG", "PNG"):
        image.close()
        raise ImageError(f"payload is {image.format}, expected JPEG or PNG")
    try:
        check_size(image.width, image.height, max_pixels)
    except ImageError:
        image.close()
        raise
    return image


def check_compressed(fmt: str, data: bytes | memoryview, max_pixels: int) -> None:
    """Validates a CompressedImage from its header alone: JPEG or PNG, not empty, at most `max_pixels`."""
    _open_compressed(fmt, data, max_pixels).close()


def compressed_to_rgb(fmt: str, data: bytes | memoryview, max_pixels: int) -> np.ndarray:
    """A CompressedImage's JPEG or PNG payload -> HxWx3 uint8 RGB; its size is checked before it is decoded."""
    with _open_compressed(fmt, data, max_pixels) as image:
        try:
            return np.asarray(image.convert("RGB"))
        except Exception as err:  # a truncated or corrupt body shows only when it is decoded
            raise ImageError(f"cannot decode {fmt!r} payload: {err}") from None

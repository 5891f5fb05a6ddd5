"""Camera encodings beyond 8-bit RGB (#21 finding 7): YUV 4:2:2, Bayer and 16-bit frames against references
encoded here by hand from a known colour pattern (numpy path; cv_bridge's own conversion where it is installed)."""

from __future__ import annotations

import numpy as np
import pytest

from rt_policy_node import images
from rt_policy_node.images import image_to_rgb

# Eight colour bars, each 2 pixels wide (so 4:2:2 chroma sharing loses nothing), 4 rows.
BARS = np.array(
    [
        [255, 255, 255],
        [255, 255, 0],
        [0, 255, 255],
        [0, 255, 0],
        [255, 0, 255],
        [255, 0, 0],
        [0, 0, 255],
        [0, 0, 0],
    ],
    np.uint8,
)
PATTERN = np.repeat(np.repeat(BARS[None], 2, axis=1), 4, axis=0)  # 4 x 16 x 3


def bt601_video_range(rgb: np.ndarray) -> np.ndarray:
    """RGB -> Y'CbCr by ITU-R BT.601's equations for 8-bit video range (Y 16-235, Cb/Cr 16-240)."""
    r, g, b = (rgb[..., i].astype(float) / 255 for i in range(3))
    y = 16 + 65.481 * r + 128.553 * g + 24.966 * b
    cb = 128 - 37.797 * r - 74.203 * g + 112.0 * b
    cr = 128 + 112.0 * r - 93.786 * g - 18.214 * b
    return np.rint(np.stack([y, cb, cr], axis=-1)).astype(np.uint8)


def pack_yuv422(rgb: np.ndarray, order: str) -> bytes:
    """Packs pixel pairs as the bytes `order` names (UYVY or YUYV), sharing the pair's chroma."""
    ycc = bt601_video_range(rgb)
    first, second = ycc[:, 0::2], ycc[:, 1::2]
    fields = {"Y0": first[..., 0], "Y1": second[..., 0], "U": first[..., 1], "V": first[..., 2]}
    names = {"UYVY": ("U", "Y0", "V", "Y1"), "YUYV": ("Y0", "U", "Y1", "V")}[order]
    return np.stack([fields[name] for name in names], axis=-1).tobytes()


@pytest.fixture(params=[False, True], ids=["numpy", "cv_bridge"])
def converter(request, monkeypatch):
    """Runs a test through numpy, and through cv_bridge where it is installed."""
    if request.param:
        pytest.importorskip("cv_bridge")
    else:
        monkeypatch.setattr(images, "CvBridge", None)


@pytest.mark.parametrize(("encoding", "order"), [("yuv422", "UYVY"), ("yuv422_yuy2", "YUYV")])
def test_yuv422_gives_back_the_colour_bars(converter, encoding, order):
    height, width, _ = PATTERN.shape
    out = image_to_rgb(height, width, encoding, width * 2, pack_yuv422(PATTERN, order))
    assert out.shape == PATTERN.shape and out.dtype == np.uint8
    # Video range quantises to 219 levels of luma: a level or two either way.
    np.testing.assert_allclose(out.astype(int), PATTERN.astype(int), atol=2)


@pytest.mark.parametrize("pattern", ["rggb", "bggr", "gbrg", "grbg"])
@pytest.mark.parametrize("bits", [8, 16])
def test_bayer_gives_back_uniform_patches(converter, pattern, bits):
    """Patches of one colour, 6x6 pixels: inside each (a pixel from its edge) every interpolated colour is exact."""
    colours = np.array([[[200, 40, 90], [10, 250, 30]], [[0, 0, 255], [128, 128, 128]]], np.uint8)
    scene = np.repeat(np.repeat(colours, 6, axis=0), 6, axis=1)  # 12 x 12 x 3
    channel = {"r": 0, "g": 1, "b": 2}
    mosaic = np.empty(scene.shape[:2], np.uint16)
    for cell, letter in enumerate(pattern):  # the sensor keeps one colour per pixel, in the 2x2 pattern
        mosaic[cell // 2 :: 2, cell % 2 :: 2] = scene[cell // 2 :: 2, cell % 2 :: 2, channel[letter]]
    data = (mosaic.astype("<u2") * 257).tobytes() if bits == 16 else mosaic.astype(np.uint8).tobytes()
    out = image_to_rgb(12, 12, f"bayer_{pattern}{bits}", 12 * bits // 8, data)
    inside = np.zeros((12, 12), bool)
    for y0 in (0, 6):
        for x0 in (0, 6):
            inside[y0 + 1 : y0 + 5, x0 + 1 : x0 + 5] = True
    np.testing.assert_array_equal(out[inside], scene[inside])


@pytest.mark.parametrize("bigendian", [False, True])
@pytest.mark.parametrize(("encoding", "channels"), [("mono16", 1), ("rgb16", 3), ("bgr16", 3), ("bgra16", 4)])
def test_16_bit_frames_scale_to_8_bits_in_either_byte_order(converter, encoding, channels, bigendian):
    levels = np.array([0, 1, 128, 257, 32767, 32768, 65277, 65535], np.uint16)
    pixels = np.stack([np.roll(levels, shift) for shift in range(channels)], axis=-1).reshape(2, 4, channels)
    data = pixels.astype(">u2" if bigendian else "<u2").tobytes()
    out = image_to_rgb(2, 4, encoding, 4 * channels * 2, data, is_bigendian=bigendian)
    # x 255/65535 rounded: 257 is one 8-bit level, 128 rounds down, 32768 rounds up.
    expected_8 = {0: 0, 1: 0, 128: 0, 257: 1, 32767: 127, 32768: 128, 65277: 254, 65535: 255}
    scaled = np.vectorize(expected_8.get)(pixels).astype(np.uint8)
    rgb_channels = {"mono16": [0, 0, 0], "rgb16": [0, 1, 2], "bgr16": [2, 1, 0], "bgra16": [2, 1, 0]}[encoding]
    rgb = scaled[..., rgb_channels]
    np.testing.assert_array_equal(out, rgb)


def test_padded_rows_of_converted_encodings():
    height, width = PATTERN.shape[:2]
    rows = np.frombuffer(pack_yuv422(PATTERN, "UYVY"), np.uint8).reshape(height, width * 2)
    padded = np.hstack([rows, np.full((height, 6), 99, np.uint8)])
    unpadded = image_to_rgb(height, width, "yuv422", width * 2, rows.tobytes())
    np.testing.assert_array_equal(image_to_rgb(height, width, "yuv422", width * 2 + 6, padded.tobytes()), unpadded)

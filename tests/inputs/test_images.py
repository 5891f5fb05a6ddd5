"""images (ROS-free): every encoding, row padding, views instead of copies, and clear errors."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage
from PIL import ImageFile

from rt_policy_node.images import ImageError, check_compressed, compressed_to_rgb, image_to_rgb

RGB = np.random.default_rng(0).integers(0, 256, (5, 7, 3), np.uint8)


def encode(rgb: np.ndarray, encoding: str, padding: int = 0) -> tuple[int, bytes]:
    """An RGB image as a message's (step, data) in `encoding`, rows padded by `padding` bytes."""
    h, w, _ = rgb.shape
    pixels = {
        "rgb8": rgb,
        "bgr8": rgb[..., ::-1],
        "rgba8": np.dstack([rgb, np.full((h, w), 255, np.uint8)]),
        "bgra8": np.dstack([rgb[..., ::-1], np.full((h, w), 9, np.uint8)]),
        "mono8": rgb[..., :1],
    }[encoding]
    rows = pixels.reshape(h, -1)
    rows = np.hstack([rows, np.full((h, padding), 77, np.uint8)])
    return rows.shape[1], rows.tobytes()


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8"])
@pytest.mark.parametrize("padding", [0, 5])
def test_every_encoding_with_and_without_row_padding(encoding, padding):
    step, data = encode(RGB, encoding, padding)
    out = image_to_rgb(5, 7, encoding, step, data)
    assert out.shape == (5, 7, 3) and out.dtype == np.uint8
    expected = np.repeat(RGB[..., :1], 3, axis=2) if encoding == "mono8" else RGB
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("encoding", ["rgb8", "rgba8"])
def test_rgb_layouts_are_views_not_copies(encoding):
    step, data = encode(RGB, encoding, padding=3)
    buffer = bytearray(data)
    out = image_to_rgb(5, 7, encoding, step, buffer)
    assert np.shares_memory(out, np.frombuffer(buffer, np.uint8))


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ((5, 7, "yuv444", 21, 105), "unsupported encoding"),
        ((5, 7, "yuv422", 14, 70), "needs an even width"),
        ((1, 8, "bayer_rggb8", 8, 8), "needs at least 2x2 pixels"),
        ((5, 7, "16UC1", 14, 70), "unsupported encoding"),
        ((0, 7, "rgb8", 21, 0), "empty image"),
        ((5, 7, "rgb8", 20, 100), "shorter than a row"),
        ((5, 7, "rgb8", 21, 104), "expected height\\*step"),
        ((5, 7, "rgb8", 24, 105), "expected height\\*step"),
        ((2**31, 2**31, "rgb8", 3 * 2**31, 12), "expected height\\*step"),
    ],
)
def test_malformed_messages_raise_image_error(fields, reason):
    height, width, encoding, step, size = fields
    with pytest.raises(ImageError, match=reason):
        image_to_rgb(height, width, encoding, step, bytes(size))


@settings(max_examples=300, deadline=None)
@given(
    height=st.integers(-2, 40) | st.integers(0, 2**32),
    width=st.integers(-2, 40) | st.integers(0, 2**32),
    encoding=st.sampled_from(["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "rgb16", ""]) | st.text(max_size=8),
    step=st.integers(-4, 200) | st.integers(0, 2**33),
    data=st.binary(max_size=2000),
)
def test_any_fields_give_an_image_or_an_image_error(height, width, encoding, step, data):
    try:
        out = image_to_rgb(height, width, encoding, step, data)
    except ImageError:
        return
    assert out.shape == (height, width, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("fmt", ["jpeg", "png"])
def test_compressed_jpeg_and_png(fmt):
    buffer = io.BytesIO()
    PILImage.fromarray(RGB).save(buffer, format=fmt.upper())
    out = compressed_to_rgb(f"rgb8; {fmt} compressed bgr8", buffer.getvalue(), max_pixels=100)
    assert out.shape == (5, 7, 3)
    if fmt == "png":
        np.testing.assert_array_equal(out, RGB)


def test_compressed_errors():
    buffer = io.BytesIO()
    PILImage.fromarray(RGB).save(buffer, format="PNG")
    with pytest.raises(ImageError, match="exceeds"):
        compressed_to_rgb("png", buffer.getvalue(), max_pixels=34)
    with pytest.raises(ImageError, match="unsupported compressed format"):
        compressed_to_rgb("tiff", buffer.getvalue(), max_pixels=100)
    with pytest.raises(ImageError, match="cannot decode"):
        compressed_to_rgb("jpeg", b"\xff\xd8 not really a jpeg", max_pixels=100)
    gif = io.BytesIO()
    PILImage.fromarray(RGB).save(gif, format="GIF")
    with pytest.raises(ImageError, match="expected JPEG or PNG"):
        compressed_to_rgb("png", gif.getvalue(), max_pixels=100)


# -- frames too large are refused from their header (#21 finding 4) ----------------------------------------


def big_png() -> bytes:
    """A 4000x4000 PNG of one colour: about 50 KB that decodes to 48 MB."""
    buffer = io.BytesIO()
    PILImage.new("RGB", (4000, 4000), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_a_compressed_frame_over_the_limit_is_refused_before_it_is_decoded(monkeypatch):
    payload = big_png()
    assert len(payload) < 100_000

    def decode(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", decode)
    for check in (check_compressed, compressed_to_rgb):
        with pytest.raises(ImageError, match="4000x4000 image exceeds the 2304000-pixel limit"):
            check("png", payload, max_pixels=1920 * 1200)
    check_compressed("png", payload, max_pixels=4000 * 4000)


def test_a_corrupt_body_behind_a_valid_header_is_an_image_error():
    payload = big_png()
    check_compressed("png", payload[:2000], max_pixels=4000 * 4000)
    with pytest.raises(ImageError, match="cannot decode"):
        compressed_to_rgb("png", payload[:2000], max_pixels=4000 * 4000)

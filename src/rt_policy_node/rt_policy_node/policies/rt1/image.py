"""Camera frames to encoder input (the reference's exact resize and scaling) and the training augmentation.

The encoder sees a square `image_size` RGB image with values in [0, 255] (see efficientnet.py for the
normalisation inside its stem). Frames come as uint8 (divided by 255 in float32) or as float in [0, 1];
`tf.image.resize`'s bilinear half-pixel resize is reproduced bit for bit, then the values are scaled by 255.
"""

from __future__ import annotations

import torch
from einops import rearrange

# The reference pads 256x320 frames by 20 rows and 50 columns on each side before its random crop.
PAD_FRACTION = (20 / 256, 50 / 320)


def to_unit_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 -> float32 `x / 255`; float input is taken to be in [0, 1] already."""
    if images.dtype == torch.uint8:
        return images.to(torch.float32) / 255.0
    if not images.is_floating_point():
        raise TypeError(f"images must be uint8 or float in [0, 1], got {images.dtype}")
    return images.to(torch.float32)


def _bilinear_taps(in_size: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Source indices and weights of TF's half-pixel bilinear resize, computed in float32 as TF does."""
    scale = torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)
    src = (torch.arange(out_size, dtype=torch.float32) + 0.5) * scale - 0.5
    floor = torch.floor(src)
    low = floor.clamp_min(0).long()
    high = torch.ceil(src).clamp_max(in_size - 1).long()
    return low.to(device), high.to(device), (src - floor).to(device)


def resize_bilinear(images: torch.Tensor, size: int) -> torch.Tensor:
    """`[N, C, H, W]` -> `[N, C, size, size]`, equal bit for bit to `tf.image.resize` (bilinear, no antialias)."""
    height, width = images.shape[-2:]
    if (height, width) == (size, size):
        return images
    low, high, w = _bilinear_taps(width, size, images.device)
    left, right = images[..., low], images[..., high]
    rows = left + (right - left) * w
    low, high, w = _bilinear_taps(height, size, images.device)
    top, bottom = rows[..., low, :], rows[..., high, :]
    return top + (bottom - top) * w[:, None]


def center_crop(images: torch.Tensor, crop_size: int) -> torch.Tensor:
    """Centre square crop of `[..., H, W, 3]` frames (the reference's inference crop in random-crop mode)."""
    height, width = images.shape[-3:-1]
    if crop_size > min(height, width):
        raise ValueError(f"crop_size {crop_size} is larger than the {height}x{width} image")
    top, left = (height - crop_size) // 2, (width - crop_size) // 2
    return images[..., top : top + crop_size, left : left + crop_size, :]


def preprocess(images: torch.Tensor, size: int) -> torch.Tensor:
    """Frames `[..., H, W, 3]` (uint8, or float in [0, 1]) -> encoder input `[N, 3, size, size]` in [0, 255]."""
    if images.ndim < 3 or images.shape[-1] != 3:
        raise ValueError(f"expected RGB frames [..., H, W, 3], got shape {tuple(images.shape)}")
    frames = rearrange(to_unit_float(images), "... h w c -> (...) c h w")
    return resize_bilinear(frames, size) * 255.0


def augment(
    images: torch.Tensor,
    mode: str = "pad_then_crop",
    crop_size: int = 236,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Training-time random crop of `[B, T, H, W, 3]` windows; one offset per window, shared by its frames.

    `pad_then_crop` (RT-1's): zero-pad by 7.8% of the height and 15.6% of the width on each side, then
    crop back to H x W, so the whole field of view stays reachable. `random_crop`: a crop_size square
    (the model centre-crops at inference in this mode). The reference draws one offset per batch; one
    per window gives more variety at no cost.
    """
    batch, _, height, width, _ = images.shape
    if mode == "pad_then_crop":
        pad_y, pad_x = round(height * PAD_FRACTION[0]), round(width * PAD_FRACTION[1])
        source = images.new_zeros(*images.shape[:2], height + 2 * pad_y, width + 2 * pad_x, 3)
        source[:, :, pad_y : pad_y + height, pad_x : pad_x + width] = images
        out_h, out_w = height, width
    elif mode == "random_crop":
        if crop_size > min(height, width):
            raise ValueError(f"crop_size {crop_size} is larger than the {height}x{width} image")
        source, out_h, out_w = images, crop_size, crop_size
    else:
        raise ValueError(f"unknown augmentation {mode!r}")
    max_y, max_x = source.shape[2] - out_h, source.shape[3] - out_w
    offset_y = torch.randint(0, max_y + 1, (batch,), generator=generator).tolist()
    offset_x = torch.randint(0, max_x + 1, (batch,), generator=generator).tolist()
    return torch.stack(
        [source[b, :, y : y + out_h, x : x + out_w] for b, (y, x) in enumerate(zip(offset_y, offset_x, strict=True))]
    )

"""FiLM-EfficientNet (B0-B3): RT-1's image encoder, the instruction conditioning every MBConv block.

Matches the Keras EfficientNet that RT-1 builds (robotics_transformer/film_efficientnet): the input is an
RGB image with values in [0, 255]; the stem scales it by 1/255, subtracts the ImageNet mean, divides by
the ImageNet std and then by sqrt(std) once more (a Keras quirk, kept because trained weights expect it).
Stride-2 convolutions pad (k//2 - 1, k//2) on top/left and bottom/right whatever the input size, so a
300x300 image ends at 9x9, not 10x10 (see ConvBN for how). Batch norm uses eps 1e-3 and Keras' momentum 0.99.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from rt_policy_node.policies.rt1.film import FiLM

# EfficientNet-B0 stages: (kernel, repeats, filters_in, filters_out, expand_ratio, stride); SE ratio 0.25.
STAGES = (
    (3, 1, 32, 16, 1, 1),
    (3, 2, 16, 24, 6, 2),
    (5, 2, 24, 40, 6, 2),
    (3, 3, 40, 80, 6, 2),
    (5, 3, 80, 112, 6, 1),
    (5, 4, 112, 192, 6, 2),
    (3, 1, 192, 320, 6, 1),
)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # Keras momentum 0.99


def round_filters(filters: int, width_coefficient: float, divisor: int = 8) -> int:
    """EfficientNet's channel scaling: multiply, round to a multiple of 8, never lose more than 10%."""
    scaled = filters * width_coefficient
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def round_repeats(repeats: int, depth_coefficient: float) -> int:
    return math.ceil(depth_coefficient * repeats)


def drop_path(x: torch.Tensor, rate: float, training: bool) -> torch.Tensor:
    """Stochastic depth: drops a residual branch per sample, scaling survivors by 1 / (1 - rate)."""
    if not training or rate == 0.0:
        return x
    keep = torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) >= rate
    return x * keep / (1.0 - rate)


class ImageNormalization(nn.Module):
    """The Keras stem: x / 255, `(x - mean) / sqrt(variance)`, then x / sqrt(std) (std^1.5 in all)."""

    def __init__(self) -> None:
        super().__init__()
        std = torch.tensor(IMAGENET_STD)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN))
        self.register_buffer("variance", std**2)
        self.register_buffer("extra_scale", 1.0 / torch.sqrt(std), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * (1.0 / 255.0)
        x = (x - self.mean[:, None, None]) / torch.sqrt(self.variance).clamp_min(1e-7)[:, None, None]
        return x * self.extra_scale[:, None, None]


class ConvBN(nn.Module):
    """Conv (no bias) -> batch norm -> optional swish.

    A stride-2 conv runs as a (k+1)x(k+1) kernel whose first row and column are zero, with symmetric
    padding k//2: it reads exactly the pixels of RT-1's fixed (k//2 - 1, k//2) zero padding, without
    copying the feature map into a padded one. When no gradient is needed (inference), the batch norm
    is folded into the kernel and a bias (computed once, refreshed whenever a parameter changes) and
    swish runs in place: the same maths in fewer passes over the feature map.
    """

    def __init__(self, dim_in: int, dim_out: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(dim_in, dim_out, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(dim_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.act = act
        self._folded: tuple[torch.Tensor, torch.Tensor] | None = None
        self._folded_from: tuple | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or torch.is_grad_enabled():
            x = self.bn(self._conv(x, self._kernel(self.conv.weight)))
            return F.silu(x) if self.act else x
        x = self._conv(x, *self._folded_weights())
        return F.silu(x, inplace=True) if self.act else x

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        return F.conv2d(x, weight, bias, self.conv.stride, self.conv.padding, groups=self.conv.groups)

    def _kernel(self, weight: torch.Tensor) -> torch.Tensor:
        return F.pad(weight, (1, 0, 1, 0)) if self.conv.stride[0] == 2 else weight

    def _folded_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        sources = (self.conv.weight, self.bn.weight, self.bn.bias, self.bn.running_mean, self.bn.running_var)
        version = tuple((t.data_ptr(), t._version) for t in sources)
        if self._folded is None or version != self._folded_from:
            scale = self.bn.weight * torch.rsqrt(self.bn.running_var + self.bn.eps)
            weight = self._kernel(self.conv.weight * scale[:, None, None, None])
            weight = weight.contiguous(memory_format=_memory_format(self.conv.weight))
            self._folded = (weight.detach(), (self.bn.bias - self.bn.running_mean * scale).detach())
            self._folded_from = version
        return self._folded


def _memory_format(weight: torch.Tensor) -> torch.memory_format:
    channels_last = weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()
    return torch.channels_last if channels_last else torch.contiguous_format


class SqueezeExcite(nn.Module):
    """Channel gates from the pooled map: 1x1 convs with bias (applied as linear maps), swish, sigmoid."""

    def __init__(self, dim: int, squeezed: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(dim, squeezed, 1)
        self.expand = nn.Conv2d(squeezed, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean((2, 3))
        hidden = F.silu(F.linear(pooled, self.reduce.weight.flatten(1), self.reduce.bias))
        gate = torch.sigmoid(F.linear(hidden, self.expand.weight.flatten(1), self.expand.bias))
        return x * gate[:, :, None, None]


class MBConv(nn.Module):
    """Inverted residual block (expand, depthwise, squeeze-excite, project), then FiLM on its output."""

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        kernel: int,
        stride: int,
        expand_ratio: int,
        drop_rate: float,
        context_dim: int,
    ) -> None:
        super().__init__()
        hidden = dim_in * expand_ratio
        self.expand = ConvBN(dim_in, hidden) if expand_ratio != 1 else nn.Identity()
        self.depthwise = ConvBN(hidden, hidden, kernel, stride, groups=hidden)
        self.se = SqueezeExcite(hidden, max(1, int(dim_in * 0.25)))
        self.project = ConvBN(hidden, dim_out, act=False)
        self.residual = stride == 1 and dim_in == dim_out
        self.drop_rate = drop_rate
        self.film = FiLM(context_dim, dim_out)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        if self.residual:
            out = drop_path(out, self.drop_rate, self.training) + x
        return self.film(out, context)


class FiLMEfficientNet(nn.Module):
    """Image `[N, 3, H, W]` in [0, 255] + context `[N, context_dim]` -> feature map `[N, out_dim, h, w]`.

    The EfficientNet body ends at `top_activation` (1536 channels for B3); a 1x1 conv without bias to
    `out_dim` and one more FiLM follow, as in RT-1's EfficientNetEncoder. `output_stride` 16 (or 8) keeps the
    later stages at that stride instead of 32, for a finer feature map from a small image.
    """

    def __init__(
        self,
        width_coefficient: float = 1.2,
        depth_coefficient: float = 1.4,
        context_dim: int = 512,
        out_dim: int = 512,
        drop_connect_rate: float = 0.2,
        output_stride: int = 32,
    ) -> None:
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ValueError(f"output_stride must be 8, 16 or 32, got {output_stride}")
        self.normalize = ImageNormalization()
        self.stem = ConvBN(3, round_filters(32, width_coefficient), 3, 2)
        reached = 2

        total = sum(round_repeats(stage[1], depth_coefficient) for stage in STAGES)
        self.blocks = nn.ModuleList()
        self.block_names = []
        for stage, (kernel, repeats, dim_in, dim_out, expand_ratio, stride) in enumerate(STAGES):
            dim_in, dim_out = round_filters(dim_in, width_coefficient), round_filters(dim_out, width_coefficient)
            stride = stride if reached * stride <= output_stride else 1
            reached *= stride
            for j in range(round_repeats(repeats, depth_coefficient)):
                drop_rate = drop_connect_rate * len(self.blocks) / total
                block = MBConv(
                    dim_in if j == 0 else dim_out,
                    dim_out,
                    kernel,
                    stride if j == 0 else 1,
                    expand_ratio,
                    drop_rate,
                    context_dim,
                )
                self.blocks.append(block)
                self.block_names.append(f"block{stage + 1}{chr(ord('a') + j)}")

        top_dim = round_filters(1280, width_coefficient)
        self.top = ConvBN(round_filters(320, width_coefficient), top_dim)
        self.head = nn.Conv2d(top_dim, out_dim, 1, bias=False)
        self.head_film = FiLM(context_dim, out_dim)

    def forward(
        self, images: torch.Tensor, context: torch.Tensor, return_intermediates: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """With `return_intermediates`, also returns the Keras layers' outputs by name (parity probes)."""
        stages = {}
        x = self.stem(self.normalize(images))
        stages["stem_activation"] = x
        for name, block in zip(self.block_names, self.blocks, strict=True):
            x = block(x, context)
            stages[f"{name}_film"] = x
        x = self.top(x)
        stages["top_activation"] = x
        out = self.head_film(self.head(x), context)
        return (out, stages) if return_intermediates else out

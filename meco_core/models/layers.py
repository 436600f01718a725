"""Building blocks shared by every decoder and head, so models differ only where papers do."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv_norm_act(cin: int, cout: int, kernel: int = 1) -> nn.Sequential:
    """Conv (no bias) + BatchNorm + GELU: the default projection everywhere."""
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.GELU())


class StageFusion(nn.Module):
    """Fuse per-stage task features with a per-pixel softmax over stages (MLoRE's task mask).

    All ViT taps share one stride, so no resampling is needed; the cost is one 1x1 conv to
    a single channel per stage.
    """

    def __init__(self, channels: int, num_stages: int) -> None:
        super().__init__()
        self.score = nn.ModuleList(nn.Conv2d(channels, 1, 1) for _ in range(num_stages))

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        scores = torch.cat([s(x) for s, x in zip(self.score, stages)], dim=1).softmax(dim=1)
        return sum(scores[:, i:i + 1] * x for i, x in enumerate(stages))


class DenseHead(nn.Module):
    """Task head h_t: 3x3 conv, norm, GELU, 1x1 conv at feature stride, then upsample.

    `upsample_stages` adds x2 learned refinement steps (3x3 conv at half the channels each)
    before the final bilinear upsample: better thin structures for a little compute.
    `skip_channels` > 0 adds a high-resolution skip (DeepLabv3+ style): the backbone's stem
    features are projected, added at their resolution and refined by one 3x3 conv, which
    gives thin classes (poles, signs, people) edges the stride-16 tokens cannot carry.
    """

    def __init__(self, channels: int, out_channels: int, upsample_stages: int = 0, skip_channels: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_norm_act(channels, channels, 3)]
        width = channels
        for _ in range(upsample_stages):
            layers += [nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                       conv_norm_act(width, max(width // 2, 32), 3)]
            width = max(width // 2, 32)
        self.body = nn.Sequential(*layers)
        self.skip_proj = conv_norm_act(skip_channels, width) if skip_channels else None
        self.skip_refine = conv_norm_act(width, width, 3) if skip_channels else None
        self.out = nn.Conv2d(width, out_channels, 1)

    def forward(self, x: torch.Tensor, size: tuple[int, int], skip: torch.Tensor | None = None) -> torch.Tensor:
        x = self.body(x)
        if self.skip_proj is not None:
            if skip is None:
                raise ValueError("this head was built with a stem skip; pass the backbone's stem features")
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = self.skip_refine(x + self.skip_proj(skip))
        return F.interpolate(self.out(x), size=size, mode="bilinear", align_corners=False)


class DepthActivation(nn.Module):
    """Metric depth from a logit: sigmoid x max_depth keeps it positive and bounded."""

    def __init__(self, max_depth: float, min_depth: float = 1e-3) -> None:
        super().__init__()
        self.max_depth, self.min_depth = float(max_depth), float(min_depth)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (torch.sigmoid(x) * self.max_depth).clamp_min(self.min_depth)

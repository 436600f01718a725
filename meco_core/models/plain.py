"""Plain per-task decoder for the single-task baselines (and a multi-task 'no MoE' reference).

Per tapped layer and task: 1x1 projection and one 3x3 conv block; no sharing between
tasks. With one task this is the single-task model of the comparison tables.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import conv_norm_act
from .registry import register_model


@register_model("plain")
@register_model("single_depth", fixed={"tasks": ["depth"]})
@register_model("single_segmentation", fixed={"tasks": ["segmentation"]})
class PlainDecoder(nn.Module):
    def __init__(self, in_dims: list[int], tasks: list[str], channels: int = 256) -> None:
        super().__init__()
        self.tasks, self.channels = tasks, channels
        self.stages = nn.ModuleList(
            nn.ModuleDict({t: nn.Sequential(conv_norm_act(in_dim, channels, 1), conv_norm_act(channels, channels, 3))
                           for t in tasks})
            for in_dim in in_dims)

    def forward(self, features: list[torch.Tensor]):
        per_task = {t: [stage[t](f) for stage, f in zip(self.stages, features)] for t in self.tasks}
        return per_task, {}

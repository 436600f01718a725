"""TaskExpert decoder (Ye & Xu, ICCV 2023), implemented from the paper's abstract only.

The authors' code was never released, so this follows the abstract (seed 002):
- N expert networks decompose each tapped backbone feature into task-generic features;
- a per-task, per-pixel gating network assembles task-specific features from them;
- a multi-task feature memory, one per task, is updated at every tapped layer and joins
  the gate as an extra expert, giving long-range links between layers.
Expert internals (1x1 bottleneck, depthwise 3x3, 1x1) and the memory update (1x1 conv +
BN + GELU added to the memory) are our choices.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import conv_norm_act
from .registry import register_model


def expert_network(channels: int) -> nn.Sequential:
    hidden = channels // 2
    return nn.Sequential(
        nn.Conv2d(channels, hidden, 1), nn.GELU(),
        nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden), nn.GELU(),
        nn.Conv2d(hidden, channels, 1), nn.BatchNorm2d(channels),
    )


@register_model("taskexpert")
class TaskExpertDecoder(nn.Module):
    def __init__(self, in_dims: list[int], tasks: list[str], channels: int = 256,
                 num_experts: int = 8) -> None:
        super().__init__()
        self.tasks, self.channels = tasks, channels
        self.project = nn.ModuleList(conv_norm_act(in_dim, channels, 1) for in_dim in in_dims)
        num_stages = len(in_dims)
        self.experts = nn.ModuleList(nn.ModuleList(expert_network(channels) for _ in range(num_experts))
                                     for _ in range(num_stages))
        # Per task and stage: per-pixel gate over N experts + the memory expert.
        self.gates = nn.ModuleList(nn.ModuleDict({t: nn.Conv2d(channels, num_experts + 1, 1) for t in tasks})
                                   for _ in range(num_stages))
        self.memory_update = nn.ModuleList(nn.ModuleDict({t: conv_norm_act(channels, channels, 1) for t in tasks})
                                           for _ in range(num_stages))

    def forward(self, features: list[torch.Tensor]):
        per_task: dict[str, list[torch.Tensor]] = {t: [] for t in self.tasks}
        memory: dict[str, torch.Tensor] = {}
        for s, f in enumerate(features):
            x = self.project[s](f)
            experts = torch.stack([e(x) for e in self.experts[s]], dim=1)             # (B, N, C, h, w)
            for t in self.tasks:
                mem = memory.get(t, torch.zeros_like(x))
                candidates = torch.cat([experts, mem.unsqueeze(1)], dim=1)            # (B, N+1, C, h, w)
                gate = self.gates[s][t](x).softmax(dim=1).unsqueeze(2)                # (B, N+1, 1, h, w)
                feat = (gate * candidates).sum(dim=1)
                memory[t] = mem + self.memory_update[s][t](feat)
                per_task[t].append(feat)
        return per_task, {}

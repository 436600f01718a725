"""Task-specific routing shared by MECO and MLoRE: noisy top-k (or soft) gates per image.

Routing is per image (global pooling), as in MLoRE: at batch 1 only the k selected
experts/codebooks need to be evaluated at inference, which is what makes MECO cheap.
`RouterNet` turns a task feature into a vector (N logits for MLoRE, a query for MECO);
`route` turns logits into the selected indices and weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Routing:
    """indices (B, k) long, weights (B, k) summing to 1, probs (B, N) dense gates
    (zeros for unselected experts), logits (B, N)."""

    indices: torch.Tensor
    weights: torch.Tensor
    probs: torch.Tensor
    logits: torch.Tensor


class RouterNet(nn.Module):
    """Global branch (two 1x1 convs + pooling) and an optional position branch.

    MLoRE's position branch is a linear map over all H*W positions, which ties the model
    to one input size; here positions are first pooled to a fixed `grid` so any input
    size works.
    """

    def __init__(self, channels: int, out_dim: int, position_branch: bool = True, grid: int = 4) -> None:
        super().__init__()
        hidden = max(channels // 4, 8)
        self.global_branch = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.GELU(), nn.Conv2d(hidden, hidden, 1))
        self.grid = grid
        self.position_branch = nn.Sequential(
            nn.Flatten(2), nn.Linear(grid * grid, 1), nn.Flatten(1), nn.Linear(channels, hidden),
        ) if position_branch else None
        self.predict = nn.Linear(hidden * (2 if position_branch else 1), out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [self.global_branch(x).mean(dim=(2, 3))]
        if self.position_branch is not None:
            feats.append(self.position_branch(F.adaptive_avg_pool2d(x, self.grid)))
        return self.predict(torch.cat(feats, dim=1))


def check_routing(routing: str, top_k: int, num_experts: int) -> None:
    if routing not in ("topk", "soft"):
        raise ValueError(f"routing must be 'topk' or 'soft', got {routing!r}")
    if not 1 <= top_k <= num_experts:
        raise ValueError(f"top_k={top_k} must be in [1, num_experts={num_experts}]")


def route(logits: torch.Tensor, top_k: int, routing: str = "topk", training: bool = False,
          noise_std: float = 1.0) -> Routing:
    """Soft: softmax over all N. Top-k: noisy logits while training, softmax over the k kept."""
    n = logits.shape[1]
    if routing == "soft":
        probs = logits.softmax(dim=1)
        idx = torch.arange(n, device=logits.device).expand(logits.shape[0], -1)
        return Routing(idx, probs, probs, logits)
    noisy = logits + torch.randn_like(logits) * (noise_std / n) if training else logits
    top_logits, idx = noisy.topk(top_k, dim=1)
    weights = top_logits.softmax(dim=1)
    probs = torch.zeros_like(logits).scatter(1, idx, weights)
    return Routing(idx, weights, probs, logits)


class TaskRouter(nn.Module):
    """MLoRE's router: RouterNet to N logits, then `route`."""

    def __init__(self, channels: int, num_experts: int, top_k: int, routing: str = "topk",
                 position_branch: bool = True) -> None:
        super().__init__()
        check_routing(routing, top_k, num_experts)
        self.num_experts, self.top_k, self.routing = num_experts, top_k, routing
        self.net = RouterNet(channels, num_experts, position_branch)

    def forward(self, x: torch.Tensor) -> Routing:
        return route(self.net(x), self.top_k, self.routing, self.training)


def load_balance_loss(probs: torch.Tensor) -> torch.Tensor:
    """Squared coefficient of variation of per-expert importance over the batch (as MLoRE)."""
    importance = probs.sum(dim=0)
    if importance.numel() < 2:
        return importance.new_zeros(())
    return importance.var() / (importance.mean() ** 2 + 1e-10)

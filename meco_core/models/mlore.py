"""MLoRE decoder: Mixture of Low-Rank Experts (Yang et al., CVPR 2024, seed 001 section 3).

Per tapped layer: task projections X^t (1x1), then two MLoRE blocks. A block sums
  - the task-sharing generic path: one 3x3 conv shared by tasks, input detached;
  - N task-sharing low-rank experts (3x3 conv C->r_n, 1x1 r_n->C, ranks spread 16..128,
    no activations) gated by a per-task noisy top-k router, then a per-task BatchNorm;
  - a task-specific low-rank expert (rank R = 64).
All paths are linear, so at inference they re-parameterise into ONE 3x3 conv per task
(seed eqs. 3-7). The gates depend on the image, so the merged kernel is formed per image:
each expert's dense 3x3 kernel W_b W_a is precomputed once (`reparameterize()`), and the
per-image merge is a (B*T, N) x (N, 9C^2) matrix product. This trades memory (N dense
kernels per block) for speed; forming the kernel from the low-rank factors per image
would cost about as much as the convolution itself.

Training form (`MLoReBlock`) evaluates every expert, as MoE training does; the inference
form (`MLoReReparamBlock`) matches it to float precision (see test_models).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import conv_norm_act
from .registry import register_model
from .router import TaskRouter, load_balance_loss


def spread_ranks(num_experts: int, low: int = 16, high: int = 128) -> list[int]:
    """Ranks evenly spread from `low` to `high` (the paper's 16..128 step 8 for N=15)."""
    if num_experts == 1:
        return [low]
    return [round(low + (high - low) * i / (num_experts - 1)) for i in range(num_experts)]


def compose_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1x1 (C_out, r) after 3x3 (r, C_in, 3, 3) as one dense 3x3 kernel (C_out, C_in, 3, 3)."""
    return torch.einsum("or,rixy->oixy", a, b)


def low_rank_to_dense(conv_b: nn.Conv2d, conv_a: nn.Conv2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Compose 3x3 (C->r) then 1x1 (r->C) into one 3x3 C->C kernel and bias."""
    a = conv_a.weight[:, :, 0, 0]                                      # (C, r)
    weight = compose_kernel(a, conv_b.weight)
    bias = a @ conv_b.bias + conv_a.bias
    return weight, bias


class MLoReBlock(nn.Module):
    """Training form: every path evaluated; gates zero for unselected experts."""

    def __init__(self, channels: int, tasks: list[str], num_experts: int, top_k: int, ranks: list[int],
                 task_rank: int, routing: str, router_position: bool) -> None:
        super().__init__()
        self.tasks, self.ranks = tasks, ranks
        self.generic = nn.Conv2d(channels, channels, 3, padding=1)
        # All N experts' 3x3 convs as one conv to sum(r_n) channels, and their 1x1 convs as
        # one (C, sum r_n) matrix: same FLOPs as N separate experts, far fewer kernel calls.
        self.experts_b = nn.Conv2d(channels, sum(ranks), 3, padding=1)
        self.experts_a = nn.Parameter(torch.randn(channels, sum(ranks)) * sum(ranks) ** -0.5)
        self.experts_a_bias = nn.Parameter(torch.zeros(len(ranks), channels))
        self.register_buffer("rank_owner", torch.repeat_interleave(torch.arange(len(ranks)), torch.tensor(ranks)),
                             persistent=False)
        self.expert_norm = nn.ModuleDict({t: nn.BatchNorm2d(channels) for t in tasks})
        self.specific_b = nn.ModuleDict({t: nn.Conv2d(channels, task_rank, 3, padding=1) for t in tasks})
        self.specific_a = nn.ModuleDict({t: nn.Conv2d(task_rank, channels, 1) for t in tasks})
        self.router = nn.ModuleDict({t: TaskRouter(channels, num_experts, top_k, routing, router_position)
                                     for t in tasks})
        self.post = nn.ModuleDict({t: nn.Sequential(nn.BatchNorm2d(channels), nn.GELU()) for t in tasks})

    def _experts(self, x: torch.Tensor, probs: torch.Tensor) -> torch.Tensor:
        """sum_n g_n * A_n(B_n(x)): every expert evaluated (MoE training form)."""
        hidden = self.experts_b(x) * probs[:, self.rank_owner].unsqueeze(-1).unsqueeze(-1)
        out = torch.einsum("or,brhw->bohw", self.experts_a, hidden)
        return out + (probs @ self.experts_a_bias).unsqueeze(-1).unsqueeze(-1)

    def expert_dense(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each expert as one dense 3x3 kernel: (N, C, C, 3, 3) weights and (N, C) biases."""
        weights, start = [], 0
        for r in self.ranks:
            a, b = self.experts_a[:, start:start + r], self.experts_b.weight[start:start + r]
            weights.append(compose_kernel(a, b))
            start += r
        a_blocks = self.experts_a.split(self.ranks, dim=1)
        b_bias = self.experts_b.bias.split(self.ranks)
        biases = torch.stack([a @ bb for a, bb in zip(a_blocks, b_bias)]) + self.experts_a_bias
        return torch.stack(weights), biases

    def forward(self, feats: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        out, balance = {}, 0
        for t in self.tasks:
            x = feats[t]
            routing = self.router[t](x)
            generic = self.generic(x.detach() if self.training else x)
            experts = self.expert_norm[t](self._experts(x, routing.probs))
            specific = self.specific_a[t](self.specific_b[t](x))
            out[t] = self.post[t](generic + experts + specific)
            balance = balance + load_balance_loss(routing.probs)
        return out, balance

    @torch.no_grad()
    def reparameterized(self) -> "MLoReReparamBlock":
        return MLoReReparamBlock(self)


class MLoReReparamBlock(nn.Module):
    """Inference form: one 3x3 conv per task and image, kernel merged from the gates."""

    def __init__(self, block: MLoReBlock) -> None:
        super().__init__()
        self.tasks = block.tasks
        weight, bias = block.expert_dense()
        # Stored as frozen parameters so parameter counts show what deployment really holds.
        frozen = lambda t: nn.Parameter(t.detach().clone(), requires_grad=False)  # noqa: E731
        self.expert_weight = frozen(weight.flatten(1))                                    # (N, C*C*9)
        self.expert_bias = frozen(bias)                                                   # (N, C)
        self.kernel_shape = tuple(weight.shape[1:])
        self.router = block.router
        self.post = block.post
        self.base_weight, self.base_bias = nn.ParameterDict(), nn.ParameterDict()
        self.scale = nn.ParameterDict()
        for t in self.tasks:
            bn = block.expert_norm[t]
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            sw, sb = low_rank_to_dense(block.specific_b[t], block.specific_a[t])
            self.base_weight[t] = frozen(block.generic.weight + sw)
            self.base_bias[t] = frozen(block.generic.bias + sb + bn.bias - scale * bn.running_mean)
            self.scale[t] = frozen(scale)

    def forward(self, feats: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        probs = torch.stack([self.router[t](feats[t]).probs for t in self.tasks])         # (T, B, N)
        t_count, b, n = probs.shape
        merged_w = (probs.reshape(-1, n) @ self.expert_weight).view(t_count, b, *self.kernel_shape)
        merged_b = (probs.reshape(-1, n) @ self.expert_bias).view(t_count, b, -1)
        out = {}
        for i, t in enumerate(self.tasks):
            x = feats[t]
            scale = self.scale[t].view(1, -1, 1, 1, 1)
            weight = (self.base_weight[t].unsqueeze(0) + scale * merged_w[i]).flatten(0, 1)   # (B*C, C, 3, 3)
            bias = (self.base_bias[t].unsqueeze(0) + self.scale[t] * merged_b[i]).flatten()
            c = x.shape[1]
            y = F.conv2d(x.reshape(1, b * c, *x.shape[2:]), weight, bias, padding=1, groups=b)
            out[t] = self.post[t](y.view_as(x))
        return out, probs.new_zeros(())


@register_model("mlore")
@register_model("mlore_reparam", inference_form=True)  # re-parameterised at build
class MLoReDecoder(nn.Module):
    def __init__(self, in_dims: list[int], tasks: list[str], channels: int = 256,
                 num_experts: int = 15, top_k: int = 9, rank_range: tuple[int, int] = (16, 128),
                 task_rank: int = 64, blocks_per_stage: int = 2, routing: str = "topk",
                 router_position: bool = True) -> None:
        super().__init__()
        self.tasks, self.channels = tasks, channels
        ranks = spread_ranks(num_experts, *rank_range)
        self.project = nn.ModuleList(nn.ModuleDict({t: conv_norm_act(in_dim, channels, 1) for t in tasks})
                                     for in_dim in in_dims)
        self.blocks = nn.ModuleList(
            nn.ModuleList(MLoReBlock(channels, tasks, num_experts, top_k, ranks, task_rank, routing,
                                     router_position) for _ in range(blocks_per_stage))
            for _ in in_dims)
        self.reparameterized = False

    def forward(self, features: list[torch.Tensor]):
        per_task: dict[str, list[torch.Tensor]] = {t: [] for t in self.tasks}
        balance = features[0].new_zeros(())
        for project, blocks, f in zip(self.project, self.blocks, features):
            x = {t: project[t](f) for t in self.tasks}
            for block in blocks:
                x, bal = block(x)
                balance = balance + bal
            for t in self.tasks:
                per_task[t].append(x[t])
        return per_task, {"balance": balance}

    def train(self, mode: bool = True) -> "MLoReDecoder":
        if mode and self.reparameterized:
            raise RuntimeError("re-parameterised MLoRE is inference-only (BN folded); train the 'mlore' model")
        return super().train(mode)

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Switch to the inference form in place (eval only: BN statistics are folded)."""
        if self.reparameterized:
            return
        for stage in self.blocks:
            for i, block in enumerate(stage):
                stage[i] = block.reparameterized()
        self.reparameterized = True

"""MECO decoder: Mixture-of-Expert Codebooks (Hwang & Lee, Sensors 2025), our reconstruction.

The paper states the idea (expert networks of an MoE decoder replaced by VQ codebooks,
top-k of N codebooks per task, task-specific codebook, dictionary loss) and its
numbers; its body text and code are unavailable, so the stage below follows
`shared/design/meco.md` with these choices of ours, each made for speed at equal
expressiveness:

1. P_l = 1x1 conv D -> C, shared by tasks.
2. The task-generic path g = 3x3 conv is applied ONCE to P_l (detached, as MLoRE's
   generic path) instead of once per task latent: it is task-generic by definition,
   and this removes T-1 of the decoder's most expensive convolutions.
3. Extractor z_t = 1x1 conv + BN + GELU of P_l.
4. Router r_t on z_t picks k of N expert codebooks per image; Q_t = sum_n w_n q_n(z_t).
   The router emits a query vector; expert n's logit is its cosine similarity with the
   mean codeword of codebook n (times a learned temperature). The router thus owns no
   per-expert weights: adding an expert adds exactly its K*C codebook entries.
   At inference only the k selected codebooks are searched (one batched matmul), so
   FLOPs grow with k and parameters with N (exactly N*K*C per stage).
5. Task codebook s_t = q(z_t) in E_t.
6. U_t = g + Q_t + s_t + z_t -> BN -> GELU -> 1x1 conv (`z_residual=False` drops z_t).

Two ablation knobs (README "Where MECO stands"): `codebook_warmup` trains the first N
forward passes with identity quantizers (Q_t = s_t = z_t, no dictionary loss), so the
codebooks are initialised from trained features instead of the first batch of a random
extractor; `z_residual` is the continuous path around the codebooks.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import conv_norm_act
from .registry import register_model
from .router import RouterNet, check_routing, load_balance_loss, route
from .vq import Codebooks, quantize_mixture


class MecoStage(nn.Module):
    def __init__(self, in_dim: int, channels: int, tasks: list[str], num_experts: int, top_k: int,
                 codebook_size: int, task_codebook_size: int, routing: str, codebook_update: str,
                 generic_detach: bool, router_position: bool, restart_every: int,
                 z_residual: bool = True, codebook_warmup: int = 0) -> None:
        super().__init__()
        self.tasks, self.generic_detach = tasks, generic_detach
        self.z_residual, self.codebook_warmup = z_residual, codebook_warmup
        self.fuse = conv_norm_act(in_dim, channels, 1)
        self.generic = nn.Conv2d(channels, channels, 3, padding=1)
        self.extractor = nn.ModuleDict({t: conv_norm_act(channels, channels, 1) for t in tasks})
        check_routing(routing, top_k, num_experts)
        self.top_k, self.routing = top_k, routing
        self.router = nn.ModuleDict({t: RouterNet(channels, channels, router_position) for t in tasks})
        self.router_temperature = nn.Parameter(torch.tensor(10.0))
        self.expert_codebooks = Codebooks(num_experts, codebook_size, channels, codebook_update,
                                          restart_every=restart_every)
        self.task_codebooks = nn.ModuleDict({t: Codebooks(1, task_codebook_size, channels, codebook_update,
                                                          restart_every=restart_every) for t in tasks})
        self.out = nn.ModuleDict({t: nn.Sequential(nn.BatchNorm2d(channels), nn.GELU(),
                                                   nn.Conv2d(channels, channels, 1)) for t in tasks})

    def route(self, task: str, z: torch.Tensor):
        query = F.normalize(self.router[task](z), dim=1)
        keys = F.normalize(self.expert_codebooks.embed.mean(dim=1), dim=1)          # (N, C) prototypes
        return route(self.router_temperature * query @ keys.t(), self.top_k, self.routing, self.training)

    def warming_up(self) -> bool:
        """True while training inside the codebook warm-up (the expert codebooks' step count is the clock)."""
        return self.training and int(self.expert_codebooks.steps) < self.codebook_warmup

    def forward(self, feature: torch.Tensor) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        warming_up = self.warming_up()
        if warming_up:
            self.expert_codebooks.steps += 1
        p = self.fuse(feature)
        g = self.generic(p.detach() if self.generic_detach and self.training else p)
        b, c, h, w = p.shape
        outputs: dict[str, torch.Tensor] = {}
        vq_loss = p.new_zeros(())
        balance = p.new_zeros(())
        zero_idx = torch.zeros(b, 1, dtype=torch.long, device=p.device)
        one_w = torch.ones(b, 1, dtype=p.dtype, device=p.device)
        for t in self.tasks:
            z = self.extractor[t](p)
            routing = self.route(t, z)
            if warming_up:  # identity quantizers: Q_t = s_t = z_t
                quantized = z + z
                balance = balance + load_balance_loss(routing.probs)
            elif self.training:
                tokens = z.flatten(2).transpose(1, 2)                                  # (B, M, C)
                q_experts, loss_e = self.expert_codebooks(tokens, routing.indices, routing.weights)
                q_task, loss_t = self.task_codebooks[t](tokens, zero_idx, one_w)
                quantized = (q_experts + q_task).transpose(1, 2).reshape(b, c, h, w)   # Q_t + s_t
                vq_loss = vq_loss + loss_e + loss_t
                balance = balance + load_balance_loss(routing.probs)
            else:  # one joint search of the k selected expert codebooks and the task codebook
                quantized = quantize_mixture(z.flatten(2), [
                    (self.expert_codebooks.embed[routing.indices], routing.weights),
                    (self.task_codebooks[t].embed[zero_idx], one_w)]).view(b, c, h, w)
            outputs[t] = self.out[t](g + quantized + z if self.z_residual else g + quantized)
        return outputs, {"vq": vq_loss, "balance": balance}


@register_model("meco")
class MecoDecoder(nn.Module):
    """One MecoStage per tapped backbone layer; stage outputs are fused by the model."""

    def __init__(self, in_dims: list[int], tasks: list[str], channels: int = 256,
                 num_experts: int = 15, top_k: int = 9, codebook_size: int = 64,
                 task_codebook_size: int = 64, routing: str = "topk", codebook_update: str = "dictionary",
                 generic_detach: bool = True, router_position: bool = True, restart_every: int = 100,
                 z_residual: bool = True, codebook_warmup: int = 0) -> None:
        super().__init__()
        self.channels = channels
        self.stages = nn.ModuleList(
            MecoStage(in_dim, channels, tasks, num_experts, top_k, codebook_size, task_codebook_size,
                      routing, codebook_update, generic_detach, router_position, restart_every,
                      z_residual, codebook_warmup)
            for in_dim in in_dims)

    def forward(self, features: list[torch.Tensor]):
        per_task: dict[str, list[torch.Tensor]] = {}
        aux: dict[str, torch.Tensor] = {}
        for stage, f in zip(self.stages, features):
            out, stage_aux = stage(f)
            for t, x in out.items():
                per_task.setdefault(t, []).append(x)
            for k, v in stage_aux.items():
                aux[k] = aux.get(k, 0) + v
        return per_task, aux

    def codebook_stats(self) -> dict[str, float]:
        """Mean perplexity / live fraction over all codebooks, and total restarts."""
        books = [m for m in self.modules() if isinstance(m, Codebooks)]
        stats = [b.stats() for b in books]
        return {"perplexity": sum(s["perplexity"] for s in stats) / len(stats),
                "live_fraction": sum(s["live_fraction"] for s in stats) / len(stats),
                "restarts": sum(s["restarts"] for s in stats)}

"""Vector-quantization codebooks: N codebooks of K codewords of dimension C.

One class serves both MECO's expert codebooks (N > 1, routed) and its task-specific
codebook (N = 1, always selected). Design choices (the paper's body is unavailable):
- distances for the k selected codebooks are one batched matrix product
  |z|^2 - 2 z.E^T + |E|^2, so inference cost grows with k, never with N;
- update by dictionary loss (codewords are parameters) or EMA (codewords are updated
  in place, decay 0.99), the paper's two ablation settings;
- codebooks are initialised from the first training batch of encoder features, and
  codewords whose usage falls below `dead_threshold` of uniform are restarted from
  current features: dead codewords are the classic VQ failure, so usage and
  perplexity are tracked in buffers and exposed through `stats()`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def quantize_mixture(z: torch.Tensor, groups: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Inference fast path: sum over codebooks j of w_j * nearest codeword of z in codebook j.

    z (B, C, M) channels-first; groups of (selected codebooks (B, J, K, C), weights (B, J)).
    Groups with equal K are searched together: one matmul for the distances, one argmin,
    and one `embedding_bag` that gathers and weights the codewords without ever
    materialising the (M, J, C) tensor of per-codebook quantizations.
    """
    by_size: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for selected, weights in groups:
        by_size.setdefault(selected.shape[2], []).append((selected, weights))
    out = None
    for size, items in by_size.items():
        selected = torch.cat([s for s, _ in items], dim=1)
        weights = torch.cat([w for _, w in items], dim=1)
        b, j, _, c = selected.shape
        m = z.shape[2]
        flat = selected.reshape(b, j * size, c)
        dist = torch.baddbmm(flat.pow(2).sum(-1, keepdim=True), flat, z, alpha=-2.0)   # (B, JK, M)
        codes = dist.view(b, j, size, m).argmin(dim=2)                                   # (B, J, M)
        if torch.compiler.is_exporting():  # ONNX/torch.export: a plain gather (embedding_bag does not export)
            rows = codes + (torch.arange(j, device=z.device) * size).view(1, j, 1)              # (B, J, M)
            picked = torch.gather(flat, 1, rows.reshape(b, j * m, 1).expand(b, j * m, c)).view(b, j, m, c)
            mixed = (picked * weights.view(b, j, 1, 1)).sum(dim=1).transpose(1, 2)
        else:
            rows = codes + (torch.arange(j, device=z.device) * size).view(1, j, 1) \
                + (torch.arange(b, device=z.device) * j * size).view(b, 1, 1)
            mixed = F.embedding_bag(rows.transpose(1, 2).reshape(b * m, j), flat.reshape(b * j * size, c),
                                    mode="sum", per_sample_weights=weights.unsqueeze(1).expand(b, m, j).reshape(b * m, j))
            mixed = mixed.view(b, m, c).transpose(1, 2)
        out = mixed if out is None else out + mixed
    return out


class Codebooks(nn.Module):
    def __init__(self, num_codebooks: int, codebook_size: int, dim: int, update: str = "dictionary",
                 ema_decay: float = 0.99, usage_decay: float = 0.99, dead_threshold: float = 0.03,
                 restart_every: int = 100) -> None:
        super().__init__()
        if update not in ("dictionary", "ema"):
            raise ValueError(f"codebook update must be 'dictionary' or 'ema', got {update!r}")
        self.num_codebooks, self.codebook_size, self.dim = num_codebooks, codebook_size, dim
        self.update, self.ema_decay, self.usage_decay = update, ema_decay, usage_decay
        self.dead_threshold, self.restart_every = dead_threshold, restart_every
        self.embed = nn.Parameter(torch.randn(num_codebooks, codebook_size, dim) * dim ** -0.5,
                                  requires_grad=(update == "dictionary"))
        self.register_buffer("usage", torch.full((num_codebooks, codebook_size), 1.0 / codebook_size))
        self.register_buffer("initialized", torch.tensor(False))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))
        if update == "ema":
            self.register_buffer("ema_count", torch.ones(num_codebooks, codebook_size))
            self.register_buffer("ema_sum", self.embed.detach().clone())

    # ------------------------------------------------------------------ lookup
    def lookup(self, z: torch.Tensor, indices: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest codeword of every z in each selected codebook.

        z (B, M, C), indices (B, k) -> quantized (B, M, k, C), codes (B, M, k).
        """
        b, m, c = z.shape
        k, size = indices.shape[1], self.codebook_size
        selected = self.embed[indices].reshape(b, k * size, c)                          # (B, kK, C)
        norms = self.embed.pow(2).sum(-1)[indices].reshape(b, 1, k * size)
        # |z|^2 is the same for every codeword of a row, so argmin needs only |E|^2 - 2 z.E
        dist = torch.baddbmm(norms, z, selected.transpose(1, 2), alpha=-2.0)
        codes = dist.view(b, m, k, size).argmin(dim=-1)
        rows = codes + torch.arange(k, device=z.device) * size + (torch.arange(b, device=z.device) * k * size).view(b, 1, 1)
        quantized = selected.reshape(b * k * size, c).index_select(0, rows.reshape(-1)).view(b, m, k, c)
        return quantized, codes

    def forward(self, z: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Weighted mixture of the selected codebooks' quantizations, straight-through.

        Returns (Q (B, M, C), vq_loss scalar). Gradients reach z through the identity and
        the router weights through (q - z); codewords learn from the dictionary loss.
        Outside training only the mixture is computed (`quantize_mixture`; weights sum to
        1, so the value is the same).
        """
        if not self.training:
            mixed = quantize_mixture(z.transpose(1, 2), [(self.embed[indices], weights)])
            return mixed.transpose(1, 2), z.new_zeros(())
        if not bool(self.initialized):
            self._init_from(z)
        quantized, codes = self.lookup(z, indices)
        zq = z.unsqueeze(2)
        mixed = z + torch.einsum("bk,bmkc->bmc", weights, (quantized - zq).detach())
        commitment = F.mse_loss(zq.expand_as(quantized), quantized.detach())
        loss = 0.25 * commitment
        if self.update == "dictionary":
            loss = loss + F.mse_loss(quantized, zq.detach().expand_as(quantized))
        self._track(z.detach(), indices, codes)
        return mixed, loss

    # ------------------------------------------------------------- maintenance
    @torch.no_grad()
    def _init_from(self, z: torch.Tensor) -> None:
        flat = z.detach().reshape(-1, self.dim)
        for n in range(self.num_codebooks):
            self.embed.data[n] = flat[torch.randint(len(flat), (self.codebook_size,), device=z.device)]
        if self.update == "ema":
            self.ema_sum.copy_(self.embed.data)
            self.ema_count.fill_(1.0)
        self.initialized.fill_(True)

    @torch.no_grad()
    def _track(self, z: torch.Tensor, indices: torch.Tensor, codes: torch.Tensor) -> None:
        """Usage EMA, EMA codeword update, and dead-codeword restart."""
        b, m, k = codes.shape
        global_codes = (indices.unsqueeze(1) * self.codebook_size + codes).reshape(-1)   # (B*M*k)
        counts = torch.bincount(global_codes, minlength=self.usage.numel()).view_as(self.usage).float()
        selected = torch.zeros(self.num_codebooks, dtype=torch.bool, device=z.device)
        selected[indices.reshape(-1)] = True
        freq = counts[selected] / counts[selected].sum(dim=1, keepdim=True).clamp_min(1.0)
        self.usage[selected] = self.usage_decay * self.usage[selected] + (1 - self.usage_decay) * freq
        if self.update == "ema":
            zk = z.unsqueeze(2).expand(b, m, k, self.dim).reshape(-1, self.dim)
            sums = torch.zeros(self.usage.numel(), self.dim, device=z.device, dtype=z.dtype)
            sums.index_add_(0, global_codes, zk)
            sums = sums.view(self.num_codebooks, self.codebook_size, self.dim)
            d = self.ema_decay
            self.ema_count[selected] = d * self.ema_count[selected] + (1 - d) * counts[selected]
            self.ema_sum[selected] = d * self.ema_sum[selected] + (1 - d) * sums[selected]
            n = self.ema_count.sum(dim=1, keepdim=True)
            smoothed = (self.ema_count + 1e-5) / (n + self.codebook_size * 1e-5) * n
            self.embed.data.copy_(self.ema_sum / smoothed.unsqueeze(-1))
        self.steps += 1
        if self.restart_every and int(self.steps) % self.restart_every == 0:
            self._restart_dead(z)

    @torch.no_grad()
    def _restart_dead(self, z: torch.Tensor) -> None:
        dead = self.usage < (self.dead_threshold / self.codebook_size)
        count = int(dead.sum())
        if count == 0:
            return
        flat = z.reshape(-1, self.dim)
        fresh = flat[torch.randint(len(flat), (count,), device=z.device)]
        fresh = fresh + 0.01 * fresh.std() * torch.randn_like(fresh)
        self.embed.data[dead] = fresh
        self.usage[dead] = 1.0 / self.codebook_size
        if self.update == "ema":
            self.ema_sum[dead] = fresh
            self.ema_count[dead] = 1.0
        self.restarts += count

    def stats(self) -> dict[str, float]:
        """Codebook health: mean perplexity (of K), fraction of live codewords, restarts so far."""
        p = self.usage / self.usage.sum(dim=1, keepdim=True).clamp_min(1e-12)
        perplexity = torch.exp(-(p * p.clamp_min(1e-12).log()).sum(dim=1))
        live = (self.usage >= self.dead_threshold / self.codebook_size).float().mean()
        return {"perplexity": float(perplexity.mean()), "live_fraction": float(live),
                "restarts": int(self.restarts)}

"""Optimiser and learning-rate schedule of a training run.

Kept apart from the loop because these are the knobs a pretrained encoder needs (backbone
learning-rate multiplier, warm-up) and they are tested on their own.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


def lr_factor(step: int, cfg_optim) -> float:
    """Multiplier of the base LR at `step` (0-based): linear warm-up, then cosine or poly decay."""
    o = cfg_optim
    if o.warmup_steps and step < o.warmup_steps:
        return (step + 1) / o.warmup_steps
    t = min(1.0, (step - o.warmup_steps) / max(1, o.steps - o.warmup_steps))
    decay = 0.5 * (1 + math.cos(math.pi * t)) if o.schedule == "cosine" else (1 - t) ** o.poly_power
    return o.min_lr_ratio + (1 - o.min_lr_ratio) * decay


def param_groups(model: nn.Module, cfg_optim) -> list[dict[str, Any]]:
    """Backbone at lr * backbone_lr_mult; no weight decay on norms, biases, position/class
    tokens and codebooks (decaying codewords towards 0 fights the dictionary loss)."""
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        in_backbone = name.startswith("backbone.")
        no_decay = p.ndim <= 1 or name.endswith((".embed", "pos_embed", "cls_token", "reg_token"))
        groups.setdefault((in_backbone, no_decay), []).append(p)
    out = []
    for (in_backbone, no_decay), params in sorted(groups.items()):
        out.append({"params": params, "name": f"{'backbone' if in_backbone else 'head'}{'_nodecay' if no_decay else ''}",
                    "lr": cfg_optim.lr * (cfg_optim.backbone_lr_mult if in_backbone else 1.0),
                    "weight_decay": 0.0 if no_decay else cfg_optim.weight_decay})
    return out


def build_optimizer(model: nn.Module, cfg_optim) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over `param_groups` and the per-step schedule of `lr_factor`."""
    optimizer = torch.optim.AdamW(param_groups(model, cfg_optim), lr=cfg_optim.lr, betas=cfg_optim.betas)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg_optim))

"""One optimisation step, and what happens when its numbers are not finite.

Kept apart from the loop because this is where the precision policy (fp32 on CPU; fp16 with
a GradScaler or bf16 on CUDA) and the non-finite policy live: a NaN/inf loss or gradient
skips the optimiser step on every rank (DDP ranks agree through `any_true`), the LR
schedule still advances, and `max_bad_steps` in a row abort the run.
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any, Callable

import torch

from meco_core.camera import canonical_focal_of, metric_depth_outputs

from meco_core.train import distributed as D


class TrainingAborted(RuntimeError):
    """Too many consecutive non-finite steps."""


class MixedPrecision:
    """run.precision -> autocast dtype and GradScaler (autocast on CUDA only)."""

    def __init__(self, precision: str, device: torch.device, log: Callable[[str], None]) -> None:
        self.amp_dtype = None
        if precision != "fp32":
            if device.type != "cuda":
                log(f"run.precision {precision}: autocast is used on CUDA only; training in fp32 on {device}")
            elif precision == "bf16" and not torch.cuda.is_bf16_supported():
                raise RuntimeError("run.precision bf16: this GPU does not support bfloat16; use fp16")
            else:
                self.amp_dtype = torch.float16 if precision == "fp16" else torch.bfloat16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype is torch.float16)

    def autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.amp_dtype)


class OptimisationStep:
    """forward, loss, backward, clip, step for one batch; counts skipped steps."""

    def __init__(self, model: torch.nn.Module, raw_model: torch.nn.Module, criterion: torch.nn.Module,
                 optimizer: torch.optim.Optimizer, scheduler: Any, precision: MixedPrecision, info: Any,
                 grad_clip: float, max_bad_steps: int, log: Callable[[str], None]) -> None:
        self.model, self.raw_model, self.criterion = model, raw_model, criterion
        self.optimizer, self.scheduler, self.precision, self.info = optimizer, scheduler, precision, info
        self.grad_clip, self.max_bad_steps, self.log = grad_clip, max_bad_steps, log
        self.bad_in_row, self.skipped = 0, 0

    def __call__(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        """Train on `batch` as step number `step` (1-based, for messages); the loss parts and grad norm."""
        dev = self.info.device
        batch = {k: (v.to(dev, non_blocking=True) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        with self.precision.autocast():
            outputs, aux = self.model(batch["image"], return_aux=True)
        outputs = {k: v.float() for k, v in outputs.items()}
        outputs = metric_depth_outputs(outputs, batch.get("focal"), canonical_focal_of(self.raw_model))
        aux = {k: v.float() for k, v in aux.items() if isinstance(v, torch.Tensor)}
        bad_loss, reason = False, ""
        try:
            loss, parts = self.criterion(outputs, aux, batch)
        except FloatingPointError as exc:
            bad_loss, reason, parts = True, str(exc), {}
            # a NaN loss connected to every output: DDP still gets its backward, all grads go NaN
            loss = sum(v.sum() for v in outputs.values()) * float("nan")
        grad_norm, non_finite = self._backward(loss, run=not bad_loss or self.info.enabled)
        bad = D.any_true(bad_loss or non_finite, self.info)
        self._apply(bad)
        if bad:
            self._count_bad(step, reason or f"grad norm {grad_norm}")
        else:
            self.bad_in_row = 0
        return {"loss": float(loss.detach()) if not bad_loss else math.nan, **parts, "grad_norm": grad_norm}

    def _backward(self, loss: torch.Tensor, run: bool) -> tuple[float, bool]:
        """Backward and clipping; (grad norm, whether it is non-finite)."""
        scaler = self.precision.scaler
        if run:
            scaler.scale(loss).backward()
        params = [p for p in self.raw_model.parameters() if p.grad is not None]
        grad_norm = math.nan
        if params:
            if scaler.is_enabled():
                scaler.unscale_(self.optimizer)
            clip = self.grad_clip if self.grad_clip > 0 else math.inf
            grad_norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
        return grad_norm, (not scaler.is_enabled() and not math.isfinite(grad_norm) and bool(params))

    def _apply(self, bad: bool) -> None:
        scaler = self.precision.scaler
        if scaler.is_enabled():
            scaler.step(self.optimizer)  # skips by itself on inf/NaN gradients
            scaler.update()
        elif not bad:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()

    def _count_bad(self, step: int, reason: str) -> None:
        self.skipped += 1
        self.bad_in_row += 1
        self.log(f"warning: step {step}: non-finite loss or gradients ({reason}); "
                 f"step skipped ({self.skipped} so far, {self.bad_in_row} in a row)")
        if self.bad_in_row >= self.max_bad_steps:
            raise TrainingAborted(f"{self.bad_in_row} consecutive non-finite steps (run.max_bad_steps): "
                                  "lower optim.lr, raise grad clipping, or check the data")

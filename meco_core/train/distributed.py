"""torchrun support: process group from env vars, DDP wrapping, rank-0-only side effects,
and keeping VQ codebooks identical across ranks.

Launch: `torchrun --nproc_per_node N -m meco_core.cli train --config C` (gloo on CPU,
NCCL on CUDA). Without torchrun's env vars everything here degrades to a single process.

Why codebooks need care: `Codebooks._init_from` fills `embed` (a Parameter) in place from
the first batch of *local* features with the *local* RNG, and dead-codeword restarts and
EMA updates also write `embed.data` in place. DDP only broadcasts parameters once at
construction and buffers before each forward; it never re-syncs parameters, so without
help every rank would keep its own codebooks forever (gradients are averaged, but the
starting points differ). `sync_codebooks` broadcasts rank 0's codebooks (parameter and
buffers) after every optimiser step, which is cheap (N*K*C floats per stage) and covers
init, restarts and EMA alike.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

# Decoders whose every trainable parameter takes part in every loss (MECO's expert
# codebooks are one Parameter, indexed; MLoRE's training form evaluates every expert and
# zero-weights the unselected ones). Any other model (TaskExpert: its last memory update
# feeds nothing; future sparse MoE decoders) gets find_unused_parameters=True.
DENSE_MODELS = frozenset({"meco", "mlore", "plain", "single_depth", "single_segmentation"})


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def pick_device(pref: str, local_rank: int = 0) -> torch.device:
    """'auto' -> cuda:<local_rank> when available, else cpu; explicit names are checked."""
    if pref == "auto":
        pref = "cuda" if torch.cuda.is_available() else "cpu"
    if pref.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {pref!r} requested but CUDA is not available; use run.device: cpu")
        return torch.device(pref if ":" in pref else f"cuda:{local_rank}")
    return torch.device(pref)


def init_distributed(device_pref: str = "auto") -> DistInfo:
    """Join the torchrun process group if WORLD_SIZE > 1 (gloo on CPU, nccl on CUDA)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_pref, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return DistInfo(rank, world, local_rank, device)


def cleanup(wait_for_peers: bool = False) -> None:
    """Leave the torchrun group. `wait_for_peers` (a run that ended normally on every rank): a
    barrier first, so that no rank closes its gloo connections under a rank still finishing
    (once, under load, the second rank aborted at exit: 'terminate called without an active
    exception'). Never after an error: the other ranks may never reach the barrier."""
    if dist.is_available() and dist.is_initialized():
        if wait_for_peers:
            dist.barrier()
        dist.destroy_process_group()


def wrap_model(model: nn.Module, info: DistInfo) -> nn.Module:
    """DDP when distributed (find_unused_parameters only where routing leaves params unused)."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP

    find_unused = getattr(model, "name", "") not in DENSE_MODELS
    import inspect

    ids = [info.device.index] if info.device.type == "cuda" else None
    # rank 0's buffers (BN stats, codebook usage) are sent to all ranks before every forward;
    # newer torch renamed broadcast_buffers to forward_sync_buffers
    sync = ({"forward_sync_buffers": True} if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters
            else {"broadcast_buffers": True})
    return DDP(model, device_ids=ids, find_unused_parameters=find_unused, **sync)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


def codebook_modules(model: nn.Module) -> list[nn.Module]:
    from meco_core.models.vq import Codebooks

    return [m for m in unwrap(model).modules() if isinstance(m, Codebooks)]


@torch.no_grad()
def sync_codebooks(model: nn.Module, info: DistInfo) -> None:
    """Broadcast every codebook's embed and buffers from rank 0 (no-op on one process)."""
    if not info.enabled:
        return
    for book in codebook_modules(model):
        dist.broadcast(book.embed.data, src=0)
        for buf in book.buffers():
            dist.broadcast(buf, src=0)


def any_true(flag: bool, info: DistInfo) -> bool:
    """True on every rank if it is True on any rank (agreement before skipping a step)."""
    if not info.enabled:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def all_reduce_mean(values: dict[str, float], info: DistInfo) -> dict[str, float]:
    """Mean of scalar logs across ranks (for the progress bar and CSV)."""
    if not info.enabled or not values:
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return {k: float(v) / info.world_size for k, v in zip(keys, t.tolist())}


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


@torch.no_grad()
def sync_buffers(model: nn.Module, info: DistInfo) -> None:
    """Rank 0's buffers everywhere (BN running stats drift per rank after the last forward;
    DDP would overwrite them at the next forward anyway, so this changes no result)."""
    if not info.enabled:
        return
    for buf in unwrap(model).buffers():
        dist.broadcast(buf, src=0)


def state_digest(model: nn.Module) -> str:
    """SHA-1 of every parameter and buffer, bit for bit: ranks must report the same digest."""
    import hashlib

    h = hashlib.sha1()
    for name, t in unwrap(model).state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()

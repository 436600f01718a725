"""What a training checkpoint holds beyond the weights, and how a killed run resumes.

Exact resumption needs the optimiser, schedule, GradScaler, step, the best score so far,
the non-finite-step counters and every rank's RNG states (python, numpy, torch, cuda):
the model's own randomness (router noise, codebook init/restarts, drop path) continues
where it stopped. Everything is stored as weights_only-loadable objects. A checkpoint
whose training config differs from the current one (other than `config.RESUME_FREE`
keys) is refused with the differing keys named.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meco_core.models.checkpoint import CheckpointError, load_checkpoint
from meco_core.train.config import diff_configs, flatten, with_defaults


class ResumeError(CheckpointError):
    """`--resume` found a checkpoint that does not belong to this config."""


def rng_state() -> dict[str, Any]:
    """All RNG states as weights_only-loadable objects (numpy's array becomes a tensor)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                    int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def plain_metrics(m: dict[str, Any]) -> dict[str, Any]:
    """Metrics as weights_only-safe plain values."""
    return {k: (float(v) if isinstance(v, (float, np.floating)) else v) for k, v in m.items()
            if isinstance(v, (int, float, str, list, np.floating))}


def resume_entries(optimizer, scheduler, scaler, rng_states: list, counters: dict[str, int],
                   world_size: int) -> dict[str, Any]:
    """The checkpoint entries that `--resume` needs besides the weights."""
    return {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
            "rng_states": rng_states, "bad_in_row": counters["bad_in_row"], "skipped_steps": counters["skipped"],
            "world_size": world_size}


def remove_interrupted_saves(out_dir: Path) -> None:
    """Temporaries of a save that a kill interrupted (checkpoint.atomic_save)."""
    for tmp in out_dir.glob(".*.pt.*.tmp"):
        tmp.unlink(missing_ok=True)


def load_for_resume(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint at `path`, checked to hold training state of this very config."""
    ckpt = load_checkpoint(path, map_location="cpu")
    saved = ckpt.get("train_config")
    if saved is None:
        raise ResumeError(f"{path} has no training state (an exported model?); cannot resume from it")
    saved = with_defaults(saved)
    differing = diff_configs(saved, config)
    if differing:
        a, b = flatten(saved), flatten(config)
        detail = "; ".join(f"{k}: checkpoint {a.get(k, '<absent>')!r} vs now {b.get(k, '<absent>')!r}"
                           for k in differing[:8])
        raise ResumeError(f"cannot resume from {path}: config differs in {', '.join(differing)} ({detail}). "
                          "Use the original config, or start a new run with another --out.")
    return ckpt


def restore_optimisation(ckpt: dict[str, Any], optimizer, scheduler, scaler) -> None:
    optimizer.load_state_dict(ckpt["optimizer"])
    scheduler.load_state_dict(ckpt["scheduler"])
    if ckpt.get("scaler"):
        scaler.load_state_dict(ckpt["scaler"])

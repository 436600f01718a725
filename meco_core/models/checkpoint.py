"""Checkpoints: one self-describing file per model, written atomically, read with weights_only=True.

Contents: format tag, model name and config (enough to rebuild it), state dict,
class set, and optional training state (optimizer, scheduler, step, train config).
A checkpoint that does not fit the model it is loaded into is an error that names the
difference, never a partially random model.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn
from meco_core.errors import MecoError

FORMAT = "meco-checkpoint/1"


class CheckpointError(MecoError, ValueError):
    """A checkpoint file is unreadable or does not match what was asked of it."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same directory, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def model_state(model: nn.Module, half: bool = False) -> dict[str, torch.Tensor]:
    """State dict on CPU; floating tensors optionally stored as fp16 to halve the file."""
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        state[k] = v.half() if half and v.is_floating_point() else v
    return state


def save_checkpoint(path: str | Path, model: nn.Module, class_set: dict | None = None, half: bool = False,
                    **extra: Any) -> None:
    atomic_save({"format": FORMAT, "model_name": model.name, "model_config": model.config,
                 "state_dict": model_state(model, half), "class_set": class_set, **extra}, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated file, pickle payload, not a torch file
        raise CheckpointError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} file")
    return ckpt


def load_state_strict(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """load_state_dict that reports missing / unexpected / reshaped keys by name."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    reshaped = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or reshaped:
        parts = []
        for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", reshaped)):
            if keys:
                parts.append(f"{label}: {len(keys)} (e.g. {keys[:3]})")
        raise CheckpointError(f"{source} does not fit model {getattr(model, 'name', '')}: " + "; ".join(parts))
    model.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})


def build_from_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                          **overrides: Any) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights; returns (model, checkpoint)."""
    from meco_core.models import build_model

    ckpt = load_checkpoint(path, map_location)
    config = {**ckpt["model_config"], **overrides, "backbone_weights": None}
    model = build_model(ckpt["model_name"], **config)
    load_state_strict(model, ckpt["state_dict"], source=str(path))
    return model, ckpt

"""Checkpoints: one self-describing file per model, written atomically, read with weights_only=True.

Contents: format tag, model name and config (enough to rebuild it), state dict,
class set, and optional training state (optimizer, scheduler, step, train config).
A checkpoint that does not fit the model it is loaded into is an error that names the
difference, never a partially random model.
"""
from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn
from meco_core.atomic_files import temp_beside
from meco_core.errors import DiskWriteError, MecoError

FORMAT = "meco-checkpoint/1"


class CheckpointError(MecoError, ValueError):
    """A checkpoint file is unreadable or does not match what was asked of it."""


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save to a temporary file in the same directory, fsync, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = temp_beside(path)
    except OSError as exc:
        raise DiskWriteError.of(path, exc) from exc
    writer = None
    try:
        with os.fdopen(fd, "wb") as f:
            writer = _WriteRecorder(f)
            torch.save(obj, writer)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        # A full disk / file-size limit: say so and name the file (torch.save reports it as
        # "unexpected pos 704 vs 598"); `path` itself was never touched (issue 20).
        failed = writer.error if writer is not None and writer.error is not None else exc
        if isinstance(failed, OSError) and not isinstance(failed, DiskWriteError):
            raise DiskWriteError.of(path, failed) from exc
        raise


class _WriteRecorder:
    """The file torch.save writes to, keeping the OSError of a failed write: torch replaces it
    with an unreadable RuntimeError, and atomic_save reports the original."""

    def __init__(self, f: Any) -> None:
        self.f, self.error = f, None

    def write(self, data: Any) -> int:
        try:
            return self.f.write(data)
        except OSError as exc:
            self.error = self.error or exc
            raise

    def flush(self) -> None:
        self.f.flush()


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
        raise CheckpointError(f"cannot read checkpoint {path}: {_unreadable(path, exc)}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} file")
    return ckpt


def _unreadable(path: Path, exc: Exception) -> str:
    """Why torch.load failed, in words: its own message is e.g. "101" (a KeyError) for a text file,
    or a paragraph about miniz for a truncated one (issue 20: one line saying what is wrong)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
        size = path.stat().st_size
    except OSError as err:
        return f"{err.strerror or err}"
    first = str(exc).split(". ")[0].strip() or type(exc).__name__
    if head.startswith(b"PK"):  # torch.save's zip format
        if not zipfile.is_zipfile(path):  # no readable central directory: cut short or damaged
            return f"the file is truncated or corrupt ({size} bytes; {first})"
        return f"a zip archive torch.load refuses ({first})"
    if head[:1] == b"\x80":  # torch.save's legacy pickle format
        return f"the file is truncated, corrupt or holds objects weights_only refuses ({size} bytes; {first})"
    return f"not a PyTorch checkpoint ({size} bytes starting {head!r}, neither zip nor pickle)"


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


# model_config fields that say where a model's first weights came from, not what the model is:
# a model rebuilt from a checkpoint takes its weights from it, so they are cleared there (a shipped
# checkpoint records None, the run that fine-tuned from it the ImageNet weights its config named)
INIT_ONLY_CONFIG = ("backbone_weights",)


def architecture(ckpt: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's model_config without its initialisation-only fields: what the model is.
    Keys added to the models since the checkpoint was saved count at their defaults (what
    `build_from_checkpoint` rebuilds it with), so an old checkpoint and a fine-tune of it agree."""
    from meco_core.models import model_config_keys

    config = ckpt.get("model_config") or {}
    try:
        config = {**model_config_keys(ckpt.get("model_name")), **config}
    except (KeyError, ValueError):  # an unknown model name: compare what the checkpoint says
        pass
    return {k: v for k, v in config.items() if k not in INIT_ONLY_CONFIG}


def build_from_checkpoint(path: str | Path, map_location: str | torch.device = "cpu",
                          **overrides: Any) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a checkpoint describes and load its weights; returns (model, checkpoint)."""
    from meco_core.models import build_model

    ckpt = load_checkpoint(path, map_location)
    config = {**ckpt["model_config"], **overrides, **dict.fromkeys(INIT_ONLY_CONFIG)}
    model = build_model(ckpt["model_name"], **config)
    load_state_strict(model, ckpt["state_dict"], source=str(path))
    return model, ckpt

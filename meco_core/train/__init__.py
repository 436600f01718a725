"""Training: YAML config (`config`), the loop (`trainer`), torchrun helpers (`distributed`)
and the resumable data order (`sampler`).

Kept import-light: `meco train --help` must not import torch.
"""
from __future__ import annotations

__all__ = ["TrainConfig", "ConfigError", "load_config", "train"]


def __getattr__(name: str):
    if name in ("TrainConfig", "ConfigError", "load_config"):
        from . import config

        return getattr(config, name)
    if name == "train":
        from .trainer import train

        return train
    raise AttributeError(f"module 'meco_core.train' has no attribute {name!r}")

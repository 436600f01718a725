"""Models by name, in the spirit of timm's `create_model`: `build_model(name, **config)`.

Each model registers itself next to its decoder (`@register_model` in `registry.py`, used
in `meco.py`, `mlore.py`, `taskexpert.py`, `plain.py`); importing this package imports
those modules, so the registry is complete here.

Every model = shared backbone (timm ViT, hybrid ViT over a CNN stem, or timm CNN) + its
own decoder + shared stage fusion and heads, so the comparisons isolate the decoders.
Config keys common to all models:
  backbone, backbone_weights (None | PATH | "imagenet" | "hub"), backbone_kwargs,
  hybrid_stem (CNN trunk under ViT blocks), feature_stride (CNNs: the common stride),
  input_mean / input_std (None = the backbone's own; the resolved values are recorded),
  white_balance (grey-world strength on every input frame, 0 off: `white_balance.py`),
  taps, tasks, num_classes, max_depth, channels (decoder width C), head_upsample,
  stem_skip (stride-4 skip into the heads), drop_path_rate
plus each decoder's own keys (see `model_config_keys(name)`).
"""
from __future__ import annotations

import inspect
from typing import Any

from ..defaults import MAX_DEPTH_M

# The model modules register their models when imported: import every one of them here.
from . import meco, mlore, plain, taskexpert  # noqa: F401
from .backbone import Backbone, BackboneOutput, CNNBackbone, ViTBackbone, create_backbone
from .multitask import TASKS, MultiTaskModel
from .registry import ModelEntry, list_models, model_entry, register_model

COMMON_DEFAULTS: dict[str, Any] = {
    "backbone": "vit_small_patch16_224",
    "backbone_weights": None,
    "backbone_kwargs": {},
    "hybrid_stem": None,
    "feature_stride": 16,
    "input_mean": None,
    "input_std": None,
    # > 0: each frame's colour channels are balanced in the forward (grey-world, this strength)
    "white_balance": 0.0,
    "taps": None,
    "tasks": list(TASKS),
    "num_classes": 5,
    "max_depth": MAX_DEPTH_M,
    # > 0: the depth head predicts depth for this focal length (px of the network input) and
    # callers rescale by the frame's own (meco_core.camera); 0: metres for the training camera
    "canonical_focal": 0.0,
    "channels": 256,
    "head_upsample": 0,
    "stem_skip": False,
    "drop_path_rate": 0.0,
}

# Config names accepted by every decoder signature that are filled in by build_model.
_DECODER_FILLED = ("in_dims", "tasks", "channels")


def model_config_keys(name: str) -> dict[str, Any]:
    """All config keys `name` accepts with their defaults.

    Args:
        name: a registered model name (`list_models()`).

    Returns:
        `COMMON_DEFAULTS`, then the decoder's own keyword defaults, then what the name fixes.
    """
    entry = model_entry(name)
    params = inspect.signature(entry.decoder.__init__).parameters
    own = {k: p.default for k, p in params.items() if k != "self" and k not in _DECODER_FILLED}
    return {**COMMON_DEFAULTS, **own, **entry.fixed}


def build_model(name: str, **config: Any) -> MultiTaskModel:
    """Build a registered model: backbone + the name's decoder + per-task fusion and heads.

    Args:
        name: a registered model name (`list_models()`: meco, mlore, mlore_reparam,
            taskexpert, plain, single_depth, single_segmentation).
        **config: model config keys (`model_config_keys(name)` lists them with their
            defaults; the common ones are in this module's docstring), e.g.
            `backbone="vit_tiny_patch16_224"`, `channels=64`, `num_experts=8`.

    Returns:
        The `MultiTaskModel`, in training mode with random decoder weights (backbone weights
        per `backbone_weights`); in inference form (eval, re-parameterised) for names that
        mean it (`mlore_reparam`). Its `config` holds every key, input normalisation
        resolved, so a checkpoint rebuilds it exactly.

    Raises:
        ValueError: unknown name, unknown config key (the valid ones are listed), a value
            that contradicts what the name fixes, or tasks outside `TASKS`.
    """
    entry = model_entry(name)
    decoder_cls, overrides, inference_form = entry.decoder, entry.fixed, entry.inference_form
    valid = model_config_keys(name)
    unknown = sorted(set(config) - set(valid))
    if unknown:
        raise ValueError(f"model {name!r} does not take {unknown}; valid keys: {sorted(valid)}")
    for key, value in overrides.items():
        if key in config and config[key] != value:
            raise ValueError(f"model {name!r} fixes {key}={value!r}; got {config[key]!r}")
    cfg = {**valid, **config}
    bad_tasks = set(cfg["tasks"]) - set(TASKS)
    if bad_tasks or not cfg["tasks"]:
        raise ValueError(f"tasks must be a non-empty subset of {TASKS}, got {cfg['tasks']}")
    if not 0.0 <= float(cfg["white_balance"]) <= 1.0:
        raise ValueError(f"white_balance is a grey-world strength in [0, 1], got {cfg['white_balance']!r}")
    backbone = create_backbone(cfg["backbone"], taps=cfg["taps"], weights=cfg["backbone_weights"],
                               drop_path_rate=cfg["drop_path_rate"], stem_skip=cfg["stem_skip"],
                               hybrid_stem=cfg["hybrid_stem"], feature_stride=cfg["feature_stride"],
                               mean=cfg["input_mean"], std=cfg["input_std"], **cfg["backbone_kwargs"])
    # Record what the weights expect, so a checkpoint rebuilds with the same normalisation.
    cfg["input_mean"] = [round(v, 6) for v in backbone.mean.flatten().tolist()]
    cfg["input_std"] = [round(v, 6) for v in backbone.std.flatten().tolist()]
    backbone.white_balance = float(cfg["white_balance"])
    decoder_kwargs = {k: cfg[k] for k in inspect.signature(decoder_cls.__init__).parameters
                      if k in cfg and k not in ("tasks", "channels")}
    decoder = decoder_cls(in_dims=list(backbone.out_channels), tasks=list(cfg["tasks"]),
                          channels=cfg["channels"], **decoder_kwargs)
    model = MultiTaskModel(name, cfg, backbone, decoder, list(cfg["tasks"]), cfg["num_classes"],
                           cfg["max_depth"], cfg["head_upsample"])
    if inference_form:
        model.prepare_for_inference()
    return model


__all__ = ["build_model", "list_models", "model_config_keys", "register_model", "model_entry", "ModelEntry",
           "MultiTaskModel", "Backbone", "BackboneOutput", "ViTBackbone", "CNNBackbone", "create_backbone", "TASKS"]

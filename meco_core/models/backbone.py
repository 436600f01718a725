"""Backbones behind one interface: same-stride feature maps for the decoders, plus the
stride-4 stem features for the heads' skip, returned together as a `BackboneOutput`.

Every decoder (meco, mlore, taskexpert, plain, single-task) consumes `BackboneOutput.features`
and every head the optional `BackboneOutput.stem` (passed explicitly, as timm's
`forward_intermediates`, smp's encoders and Depth-Anything-V2's DPT head pass features),
so comparisons differ only in the decoder:

- `ViTBackbone`: any timm ViT, four evenly spaced blocks tapped with
  `forward_intermediates` (the paper's setting). With `hybrid_stem` the patch embedding
  is a pretrained CNN trunk (timm's `HybridEmbed`): ViT blocks over pretrained low-level
  features, the paper's taps kept.
- `CNNBackbone`: any timm CNN through `features_only` (strides 4-32), each map resized to
  one common stride; the stride-4 map serves the heads' skip.

Images come in [0, 1]; the normalisation the weights were trained with happens inside and
is recorded in the model config (and so in every checkpoint). Inputs whose size is not a
multiple of the backbone's granularity are replicate-padded and callers crop back.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple, Sequence

import timm
import torch
import torch.nn.functional as F
from torch import nn

from .pretrained import BackboneWeightsError, fit_state_dict, load_pretrained, source_state_dict
from .white_balance import grey_world

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def evenly_spaced_taps(depth: int, count: int = 4) -> list[int]:
    """Block indices 3/6/9/12 of a 12-block ViT (0-based 2, 5, 8, 11): last block included."""
    if count > depth:
        raise ValueError(f"cannot tap {count} layers of a {depth}-block backbone")
    return [round(depth * (i + 1) / count) - 1 for i in range(count)]


def default_normalization(name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """The mean/std timm's pretrained config gives `name` (EfficientNet-Lite: 0.5/0.5)."""
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return IMAGENET_MEAN, IMAGENET_STD
    return tuple(cfg.mean), tuple(cfg.std)


def is_vit(name: str) -> bool:
    """Whether timm's `name` is a patch-embedding transformer (ViT interface) rather than a CNN."""
    with torch.device("meta"):
        model = timm.create_model(name, pretrained=False, num_classes=0)
    return hasattr(model, "patch_embed") and hasattr(model, "forward_intermediates")


class BackboneOutput(NamedTuple):
    """What a backbone returns: the decoder's input and the heads' skip.

    features: one (B, C_i, H/stride, W/stride) map per tap, all at the backbone's `stride`.
    stem: (B, stem_channels, H/4, W/4) low-level features for the heads' skip; None when the
        backbone was built without `stem_skip`.
    """

    features: list[torch.Tensor]
    stem: torch.Tensor | None = None


class Backbone(nn.Module):
    """Shared part of every backbone: normalisation, padding, the stem skip, frozen BN stats.

    Subclasses set `stride` (of the returned maps), `out_channels` (one per stage),
    `stem_channels` (0 without a skip), `granularity` (input padded to a multiple of it)
    and implement `features(x) -> BackboneOutput` on normalised, padded input.
    """

    stride: int
    granularity: int
    out_channels: list[int]
    stem_channels: int = 0

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.freeze_bn_stats = False
        self.white_balance = 0.0  # grey-world strength (`white_balance.grey_world`); set by build_model

    @property
    def taps(self) -> list[int]:
        return list(self._taps)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Replicate-pad bottom/right to a multiple of `granularity`."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.granularity, (-w) % self.granularity
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x

    def train(self, mode: bool = True) -> "Backbone":
        """With `freeze_bn_stats`, BatchNorm layers keep their (pretrained) statistics: batch
        statistics of 8 crops are noisier than ImageNet's running averages."""
        super().train(mode)
        if mode and self.freeze_bn_stats:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def features(self, x: torch.Tensor) -> BackboneOutput:
        raise NotImplementedError

    def forward(self, image: torch.Tensor) -> BackboneOutput:
        """Images in [0, 1], (B, 3, H, W) -> `BackboneOutput` of the white-balanced (when
        `white_balance` > 0), normalised, padded input."""
        image = grey_world(image, self.white_balance)
        return self.features(self.pad((image - self.mean) / self.std))


# --------------------------------------------------------------------------- ViT (+ hybrid)
def _vit_state_for(vit: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Resample a checkpoint's absolute position embedding to this ViT's grid."""
    own = vit.state_dict()
    if "pos_embed" in state and "pos_embed" in own and state["pos_embed"].shape != own["pos_embed"].shape:
        from timm.layers import resample_abs_pos_embed

        prefix = 0 if getattr(vit, "no_embed_class", False) else vit.num_prefix_tokens
        state = {**state, "pos_embed": resample_abs_pos_embed(state["pos_embed"], list(vit.patch_embed.grid_size),
                                                              num_prefix_tokens=prefix)}
    return state


class StemTrunk(nn.Module):
    """A timm CNN cut at stride 16 for `HybridEmbed`; keeps its stride-4 map for the skip."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.cnn = timm.create_model(name, pretrained=False, features_only=True, out_indices=(1, 3))
        self.channels = self.cnn.feature_info.channels()
        if self.cnn.feature_info.reduction() != [4, 16]:
            raise ValueError(f"hybrid_stem {name!r} has strides {self.cnn.feature_info.reduction()}, need 4 and 16")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.cnn(x)


class ViTBackbone(Backbone):
    """timm ViT returning `len(taps)` maps (B, D, H/s, W/s); `hybrid_stem` swaps the patch
    embedding for a CNN trunk (then `weights` load into that trunk)."""

    def __init__(self, name: str = "vit_small_patch16_224", taps: Sequence[int] | None = None,
                 weights: str | None = None, drop_path_rate: float = 0.0, stem_skip: bool = False,
                 hybrid_stem: str | None = None, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, **timm_kwargs) -> None:
        default_mean, default_std = default_normalization(hybrid_stem) if hybrid_stem else (IMAGENET_MEAN, IMAGENET_STD)
        super().__init__(mean or default_mean, std or default_std)
        self.name, self.hybrid_stem = name, hybrid_stem
        if hybrid_stem:
            from timm.layers import HybridEmbed

            trunk = StemTrunk(hybrid_stem)
            # patch_size 1: one token per stride-16 trunk pixel (the ViT's own patch size is ignored)
            timm_kwargs = {"embed_layer": partial(HybridEmbed, backbone=trunk), "patch_size": 1, **timm_kwargs}
        self.vit = timm.create_model(name, pretrained=False, dynamic_img_size=True, num_classes=0,
                                     drop_path_rate=drop_path_rate, **timm_kwargs)
        if not hasattr(self.vit, "forward_intermediates") or not hasattr(self.vit, "patch_embed"):
            raise ValueError(f"timm model {name!r} is not a ViT; CNNs go through CNNBackbone")
        self._taps = list(taps) if taps is not None else evenly_spaced_taps(len(self.vit.blocks))
        self.vit.prune_intermediate_layers(self._taps, prune_norm=True, prune_head=True)
        if weights:
            self._load(weights)
        self.embed_dim: int = self.vit.embed_dim
        pe = self.vit.patch_embed
        self.patch_size: int = int(pe.feat_ratio()) if hasattr(pe, "feat_ratio") else int(pe.patch_size[0])
        self.stride = self.granularity = self.patch_size
        self.out_channels = [self.embed_dim] * len(self._taps)
        self._stem_capture: torch.Tensor | None = None  # set and taken within one features() call
        self.stem_channels = self._hook_stem() if stem_skip else 0

    def _load(self, weights: str) -> None:
        if self.hybrid_stem:  # pretrained low-level features; the ViT blocks start fresh
            load_pretrained(self.vit.patch_embed.backbone.cnn, self.hybrid_stem, weights)
        elif weights == "imagenet":
            raise BackboneWeightsError(f"no bundled ImageNet weights for the ViT {self.name!r} (none exist in the "
                                       f"registries reachable offline); use a CNN or hybrid_stem backbone, "
                                       f"'hub', or a local file")
        else:
            state, label = source_state_dict(self.name, weights)
            fit_state_dict(self.vit, _vit_state_for(self.vit, state), label, self.name)

    def _hook_stem(self) -> int:
        """Capture the convolutional stem's stride-4 output for the heads' skip.

        timm's `HybridEmbed` runs the stem inside `forward_intermediates` and keeps only its
        last map, so a forward hook catches the stride-4 one rather than a second stem pass;
        tracing for export records the hook like any other op. The capture never outlives
        the `features` call that made it: it is returned in `BackboneOutput.stem`.
        """
        stem = getattr(self.vit.patch_embed, "backbone", None)
        if stem is None:
            raise ValueError(f"stem_skip needs a hybrid ViT with a convolutional stem (e.g. vit_tiny_r_s16_p8_224 "
                             f"or hybrid_stem: tf_efficientnet_lite0); {self.name!r} embeds patches directly")
        stem.register_forward_hook(self._keep_stem)  # a bound method survives deepcopy, a lambda would not
        modes = [(m, m.training) for m in stem.modules()]
        stem.eval()  # probe without touching BatchNorm statistics (pretrained stems have them)
        with torch.no_grad():
            out = stem(torch.zeros(1, 3, 64, 64))
        for m, mode in modes:
            m.training = mode
        self._stem_capture = None
        return int((out[0] if isinstance(out, (list, tuple)) else out).shape[1])

    def _keep_stem(self, _module: nn.Module, _inputs: tuple, output) -> None:
        self._stem_capture = output[0] if isinstance(output, (list, tuple)) else output

    def features(self, x: torch.Tensor) -> BackboneOutput:
        maps = self.vit.forward_intermediates(x, indices=self._taps, output_fmt="NCHW", intermediates_only=True)
        stem, self._stem_capture = self._stem_capture, None
        return BackboneOutput(maps, stem)


# --------------------------------------------------------------------------- CNN
class CNNBackbone(Backbone):
    """timm CNN with `features_only` (strides 4, 8, 16, 32 by default), every map resized to
    `feature_stride`: finer maps average-pooled, coarser ones bilinearly upsampled. The
    stride-4 map (if tapped) is also kept for the heads' skip when `stem_skip` is set."""

    def __init__(self, name: str = "tf_efficientnet_lite0", taps: Sequence[int] | None = None,
                 weights: str | None = None, drop_path_rate: float = 0.0, stem_skip: bool = False,
                 feature_stride: int = 16, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None, **timm_kwargs) -> None:
        default_mean, default_std = default_normalization(name)
        super().__init__(mean or default_mean, std or default_std)
        self.name = name
        self._taps = list(taps) if taps is not None else [1, 2, 3, 4]
        self.cnn = timm.create_model(name, pretrained=False, features_only=True, out_indices=self._taps,
                                     drop_path_rate=drop_path_rate, **timm_kwargs)
        if weights:
            load_pretrained(self.cnn, name, weights)
        reductions = self.cnn.feature_info.reduction()
        if feature_stride not in reductions:
            raise ValueError(f"feature_stride {feature_stride} is not one of {name}'s tapped strides {reductions}")
        self.reductions = list(reductions)
        self.out_channels = list(self.cnn.feature_info.channels())
        self.stride, self.granularity = feature_stride, max(reductions)
        self.embed_dim = self.out_channels[-1]
        self.skip_index = reductions.index(4) if stem_skip and 4 in reductions else None
        if stem_skip and self.skip_index is None:
            raise ValueError(f"stem_skip needs a stride-4 tap; taps {self._taps} give strides {reductions}")
        self.stem_channels = self.out_channels[self.skip_index] if self.skip_index is not None else 0

    def features(self, x: torch.Tensor) -> BackboneOutput:
        maps = self.cnn(x)
        size = (x.shape[-2] // self.stride, x.shape[-1] // self.stride)
        out = []
        for r, m in zip(self.reductions, maps):
            if r < self.stride:
                m = F.avg_pool2d(m, self.stride // r)
            elif r > self.stride:
                m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
            out.append(m)
        return BackboneOutput(out, maps[self.skip_index] if self.skip_index is not None else None)


def create_backbone(name: str, taps: Sequence[int] | None = None, weights: str | None = None,
                    drop_path_rate: float = 0.0, stem_skip: bool = False, hybrid_stem: str | None = None,
                    feature_stride: int = 16, mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None, **timm_kwargs) -> Backbone:
    """A ViT (optionally over a `hybrid_stem` CNN trunk) or a CNN, whichever `name` is in timm."""
    common = dict(taps=taps, weights=weights, drop_path_rate=drop_path_rate, stem_skip=stem_skip, mean=mean, std=std)
    if hybrid_stem or is_vit(name):
        return ViTBackbone(name, hybrid_stem=hybrid_stem, **common, **timm_kwargs)
    return CNNBackbone(name, feature_stride=feature_stride, **common, **timm_kwargs)

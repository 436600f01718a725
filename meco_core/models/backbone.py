"""ViT backbone: any timm ViT, four evenly spaced layers tapped with `forward_intermediates`.

Every model in the registry shares this module, so complexity comparisons differ only in
the decoder. Inputs whose size is not a multiple of the patch size are padded (replicate)
and callers crop the outputs back; nothing is ever silently resized.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import timm
import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def evenly_spaced_taps(depth: int, count: int = 4) -> list[int]:
    """Block indices 3/6/9/12 of a 12-block ViT (0-based 2, 5, 8, 11): last block included."""
    if count > depth:
        raise ValueError(f"cannot tap {count} layers of a {depth}-block backbone")
    return [round(depth * (i + 1) / count) - 1 for i in range(count)]


def load_backbone_weights(model: nn.Module, path: str | Path) -> None:
    """Load a local timm-style state dict (.pt/.pth or .safetensors); no hub access.

    Unknown keys (e.g. a classifier head) are ignored, but a file that matches nothing or
    misses backbone weights is an error: a silently random backbone is the worst outcome.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"backbone weights not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and key in state and isinstance(state[key], dict):
                state = state[key]
    own = model.state_dict()
    if "pos_embed" in state and "pos_embed" in own and state["pos_embed"].shape != own["pos_embed"].shape:
        from timm.layers import resample_abs_pos_embed

        grid = model.patch_embed.grid_size
        prefix = 0 if getattr(model, "no_embed_class", False) else model.num_prefix_tokens
        state["pos_embed"] = resample_abs_pos_embed(state["pos_embed"], list(grid), num_prefix_tokens=prefix)
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("head")]
    if missing:
        raise ValueError(f"{path} does not fit this backbone: {len(missing)} missing keys, e.g. {missing[:5]}")


class ViTBackbone(nn.Module):
    """timm ViT returning `len(taps)` stride-`patch` feature maps (B, D, H/p, W/p).

    Takes images in [0, 1] (B, 3, H, W); ImageNet normalisation happens here so users
    and the ROS node never have to remember it.
    """

    def __init__(
        self,
        name: str = "vit_small_patch16_224",
        taps: Sequence[int] | None = None,
        weights: str | None = None,
        drop_path_rate: float = 0.0,
        stem_skip: bool = False,
        **timm_kwargs,
    ) -> None:
        super().__init__()
        self.name = name
        self.vit = timm.create_model(
            name, pretrained=False, dynamic_img_size=True, num_classes=0,
            drop_path_rate=drop_path_rate, **timm_kwargs,
        )
        if not hasattr(self.vit, "forward_intermediates"):
            raise ValueError(f"timm model {name!r} has no forward_intermediates; pick a ViT")
        depth = len(self.vit.blocks)
        self.taps = list(taps) if taps is not None else evenly_spaced_taps(depth)
        self.vit.prune_intermediate_layers(self.taps, prune_norm=True, prune_head=True)
        if weights:
            load_backbone_weights(self.vit, weights)
        self.embed_dim: int = self.vit.embed_dim
        self.patch_size: int = int(self.vit.patch_embed.feat_ratio()) if hasattr(self.vit.patch_embed, "feat_ratio") \
            else int(self.vit.patch_embed.patch_size[0])
        self.stem_channels = self._hook_stem() if stem_skip else 0
        self._stem: torch.Tensor | None = None
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _hook_stem(self) -> int:
        """Keep the convolutional stem's output (stride 4 in hybrid ViTs) for the heads' skip.

        A forward hook rather than a second stem pass: forward_intermediates runs the stem
        anyway, and tracing for export records the hook like any other op.
        """
        stem = getattr(self.vit.patch_embed, "backbone", None)
        if stem is None:
            raise ValueError(f"stem_skip needs a hybrid ViT with a convolutional stem (e.g. vit_tiny_r_s16_p8_224); "
                             f"{self.name!r} embeds patches directly")
        stem.register_forward_hook(self._keep_stem)  # a bound method survives deepcopy, a lambda would not
        with torch.no_grad():
            return int(stem(torch.zeros(1, 3, 64, 64)).shape[1])

    def _keep_stem(self, _module: nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        self._stem = output

    def pop_stem(self) -> torch.Tensor | None:
        """The stem features of the last forward (None without stem_skip), released after use."""
        stem, self._stem = self._stem, None
        return stem

    def pad_to_patch(self, x: torch.Tensor) -> torch.Tensor:
        """Replicate-pad bottom/right to a multiple of the patch size."""
        h, w = x.shape[-2:]
        ph, pw = (-h) % self.patch_size, (-w) % self.patch_size
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if (ph or pw) else x

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = (image - self.mean) / self.std
        x = self.pad_to_patch(x)
        return self.vit.forward_intermediates(x, indices=self.taps, output_fmt="NCHW", intermediates_only=True)

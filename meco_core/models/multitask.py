"""MultiTaskModel: backbone -> decoder -> per-task stage fusion and head (+ the stem skip).

Input: images in [0, 1], (B, 3, H, W), any H and W (padded to the backbone's granularity
inside and cropped back). Output: {"depth": (B, 1, H, W) metres, "segmentation": (B, C, H, W) logits}.
`forward(x, return_aux=True)` also returns the decoder's auxiliary losses (VQ, router
load balance) for training.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .backbone import Backbone
from .layers import DenseHead, DepthActivation, StageFusion

TASKS = ("depth", "segmentation")


class MultiTaskModel(nn.Module):
    def __init__(self, name: str, config: dict[str, Any], backbone: Backbone, decoder: nn.Module,
                 tasks: list[str], num_classes: int, max_depth: float, head_upsample: int = 0) -> None:
        super().__init__()
        self.name, self.config = name, dict(config)
        self.tasks = list(tasks)
        self.num_classes, self.max_depth = num_classes, max_depth
        self.backbone, self.decoder = backbone, decoder
        channels = decoder.channels
        num_stages = len(backbone.taps)
        self.fusion = nn.ModuleDict({t: StageFusion(channels, num_stages) for t in self.tasks})
        out_channels = {"depth": 1, "segmentation": num_classes}
        self.heads = nn.ModuleDict({t: DenseHead(channels, out_channels[t], head_upsample, backbone.stem_channels)
                                    for t in self.tasks})
        self.depth_activation = DepthActivation(max_depth)

    def forward(self, image: torch.Tensor, return_aux: bool = False):
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected images of shape (B, 3, H, W) in [0, 1], got {tuple(image.shape)}")
        h, w = image.shape[-2:]
        features, stem = self.backbone(image)  # BackboneOutput: the decoder's maps, the heads' skip
        per_task, aux = self.decoder(features)
        padded = (features[0].shape[-2] * self.backbone.stride, features[0].shape[-1] * self.backbone.stride)
        outputs = {}
        for t in self.tasks:
            y = self.heads[t](self.fusion[t](per_task[t]), padded, skip=stem)[..., :h, :w]
            outputs[t] = self.depth_activation(y) if t == "depth" else y
        return (outputs, aux) if return_aux else outputs

    @torch.no_grad()
    def prepare_for_inference(self) -> "MultiTaskModel":
        """eval() plus any inference-form conversion the decoder offers (MLoRE re-parameterisation)."""
        self.eval()
        if hasattr(self.decoder, "reparameterize"):
            self.decoder.reparameterize()
        return self

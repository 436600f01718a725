"""Grey-world white balance inside the network: each frame's colour channels scaled so their
means agree (`grey_world`).

Why: every real training frame comes from two cameras, and a camera with another white
balance costs the golf classes up to 20 points of fairway IoU (README, "Other cameras'
looks"); a camera's white balance is, to first order, one gain per channel over the whole
frame, and grey-world (Buchsbaum 1980) divides exactly such gains out. Applied in the model's
forward, training, `meco eval`, the Estimator and every export (ONNX, TorchScript) see the
same balanced frame, so no caller can forget it.
"""
from __future__ import annotations

import torch

#: no channel is scaled by more than this (nor less than its inverse): a frame of one colour
#: (sky, a wall of leaves) is not turned grey
MAX_GAIN = 2.0


def grey_world(image: torch.Tensor, strength: float, max_gain: float = MAX_GAIN) -> torch.Tensor:
    """Images (B, 3, H, W) in [0, 1] with each channel scaled by (grey / its mean) ** `strength`,
    grey being the mean of the three channel means (brightness kept); 0: unchanged, 1: full
    grey-world. Gains are clamped to [1 / max_gain, max_gain]; the result to [0, 1]."""
    if strength <= 0:
        return image
    means = image.mean(dim=(2, 3), keepdim=True).clamp_min(1e-3)  # (B, 3, 1, 1)
    gains = (means.mean(dim=1, keepdim=True) / means).pow(strength).clamp(1.0 / max_gain, max_gain)
    return (image * gains).clamp(0.0, 1.0)

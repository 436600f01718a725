"""Random camera looks for training: white balance, tone curve, softness, noise, compression.

Why: every real training frame comes from two cameras (YCOR's, CamVid's), and a model meets other sensors on
the vehicle. On the real dev frames (`tools/camera_shift.py`) a white balance 0.8x red /
1.2x blue cost the golf model 20 points of fairway IoU on YCOR frames it never saw, a
green cast 13 points on the RELLIS frame, blur doubled KITTI's metric depth error; the
photometric jitter (brightness, contrast, saturation, hue) covers none of these. One call
draws one camera: per-channel gains and a gamma always, and each of blur, sensor noise and
JPEG compression with probability 1/3. No pixel moves, so depth and labels stay as they are.
"""
from __future__ import annotations

import cv2
import numpy as np

GAIN_RANGE = (0.8, 1.25)  # red and blue gain relative to green (log-uniform)
GAMMA_RANGE = (0.67, 1.5)  # log-uniform
BLUR_SIGMA_FRAC = (0.0005, 0.003)  # of the image width
NOISE_SIGMA = (2.0, 8.0)  # grey levels
JPEG_QUALITY = (20, 90)


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def camera_look(rgb: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 RGB as another camera might have recorded it."""
    gains = np.array([_log_uniform(rng, *GAIN_RANGE), 1.0, _log_uniform(rng, *GAIN_RANGE)], np.float32)
    gamma = _log_uniform(rng, *GAMMA_RANGE)
    img = np.clip(rgb.astype(np.float32) * gains, 0, 255)
    lut = np.clip((np.arange(256, dtype=np.float32) / 255.0) ** gamma * 255.0 + 0.5, 0, 255).astype(np.uint8)
    img = lut[(img + 0.5).astype(np.uint8)]
    if rng.random() < 1 / 3:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(*BLUR_SIGMA_FRAC) * img.shape[1])
    if rng.random() < 1 / 3:
        noise = rng.normal(0.0, rng.uniform(*NOISE_SIGMA), img.shape).astype(np.float32)
        img = np.clip(img + noise + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 1 / 3:
        quality = int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    return np.ascontiguousarray(img)

"""Other cameras' looks: white balance, tone curve, softness, noise, compression, vignetting.

Why: every real training frame comes from two cameras (YCOR's, CamVid's), and a model meets
other sensors on the vehicle. On the real dev frames (`tools/camera_shift.py`, which applies
one look at a time with the functions below) a white balance 0.8x red / 1.2x blue cost the
golf model 20 points of fairway IoU on YCOR frames it never saw, a green cast 17 points of
the RELLIS frame's mean IoU, and blur made KITTI read 1.5x too near; the photometric jitter
(brightness, contrast, saturation, hue) covers none of these. `camera_look` draws one random
camera for training: per-channel gains and a gamma always, and each of blur, sensor noise and
JPEG compression with probability 1/3. No pixel moves, so depth and labels stay as they are.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

GAIN_RANGE = (0.8, 1.25)  # red and blue gain relative to green (log-uniform)
GAMMA_RANGE = (0.67, 1.5)  # log-uniform
BLUR_SIGMA_FRAC = (0.0005, 0.003)  # of the image width
NOISE_SIGMA = (2.0, 8.0)  # grey levels
JPEG_QUALITY = (20, 90)


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def white_balance(rgb: np.ndarray, red: float, green: float, blue: float) -> np.ndarray:
    """Per-channel gains, as another camera's white balance (or colour response) would give."""
    return _to_uint8(rgb.astype(np.float32) * np.array([red, green, blue], np.float32))


def tone_curve(rgb: np.ndarray, gamma: float) -> np.ndarray:
    """out = in ** gamma on 0..1: > 1 darkens mid-tones, < 1 lifts shadows."""
    lut = _to_uint8((np.arange(256, dtype=np.float32) / 255.0) ** gamma * 255.0)
    return lut[rgb]


def soften(rgb: np.ndarray, sigma_frac: float) -> np.ndarray:
    """Gaussian blur with sigma a fraction of the image width (a softer lens, defocus)."""
    return cv2.GaussianBlur(rgb, (0, 0), sigma_frac * rgb.shape[1])


def sensor_noise(rgb: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive Gaussian noise of `sigma` grey levels (a small sensor in low light)."""
    return _to_uint8(rgb + rng.normal(0.0, sigma, rgb.shape))


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """The image after a JPEG round trip at `quality` (compressed video)."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not JPEG-encode an image of shape {rgb.shape}")
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def vignette(rgb: np.ndarray, strength: float) -> np.ndarray:
    """Brightness falling towards the corners, to 1 - strength there (a wide, cheap lens)."""
    h, w = rgb.shape[:2]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((x - w / 2) / (w / 2)) ** 2 + ((y - h / 2) / (h / 2)) ** 2
    return _to_uint8(rgb * (1.0 - strength * np.clip(r2 / 2.0, 0, 1))[..., None])


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


LOOK_PARTS = ("white_balance", "tone_curve", "blur", "noise", "jpeg")


def check_look_parts(parts: Sequence[str]) -> tuple[str, ...]:
    """The parts as a tuple; a clear error naming the known ones for a misspelt part."""
    unknown = sorted(set(parts) - set(LOOK_PARTS))
    if unknown or not parts:
        raise ValueError(f"camera look parts {list(parts)}: expected a non-empty subset of {list(LOOK_PARTS)}")
    return tuple(parts)


def camera_look(rgb: np.ndarray, rng: np.random.Generator, parts: Sequence[str] = LOOK_PARTS) -> np.ndarray:
    """(H, W, 3) uint8 RGB as another, randomly drawn camera might have recorded it.

    `parts` keeps only some differences (e.g. blur, noise and JPEG for a model that balances
    white itself, `white_balance` > 0); with every part the draws are those of older releases."""
    gains = _log_uniform(rng, *GAIN_RANGE), _log_uniform(rng, *GAIN_RANGE)
    img = white_balance(rgb, gains[0], 1.0, gains[1]) if "white_balance" in parts else rgb
    gamma = _log_uniform(rng, *GAMMA_RANGE)
    img = tone_curve(img, gamma) if "tone_curve" in parts else img
    if rng.random() < 1 / 3:
        sigma_frac = rng.uniform(*BLUR_SIGMA_FRAC)
        img = soften(img, sigma_frac) if "blur" in parts else img
    if rng.random() < 1 / 3 and "noise" in parts:
        img = sensor_noise(img, rng.uniform(*NOISE_SIGMA), rng)
    if rng.random() < 1 / 3 and "jpeg" in parts:
        img = jpeg(img, int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1)))
    return np.ascontiguousarray(img)

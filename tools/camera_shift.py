"""Other cameras' looks on the same real frames: colour balance, tone curve, blur, noise, JPEG.

Why: the hidden test frames come from cameras this model never saw (other sensors, other
white balance and tone curves, compressed video), while every real training frame comes from
two cameras (YCOR's, CamVid's). Training jitter covers brightness, contrast, saturation and hue only. Applying
one camera difference at a time to the real dev frames and scoring them with `meco eval`
shows which of them the model is fragile to (a ImageNet-C-style check on real frames, with
the ground truth unchanged: none of these moves a pixel).

    .venv/bin/python tools/camera_shift.py data/ycor_every2 --split val --out data/ycor_every2_shift
    .venv/bin/meco eval --checkpoint out/meco_golf_v15a.pt --data data/ycor_every2_shift/warm --split val
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from meco_core.data.format import DatasetReader, DatasetWriter


def _gains(r: float, g: float, b: float) -> Callable[[np.ndarray], np.ndarray]:
    return lambda rgb: np.clip(rgb.astype(np.float32) * np.array([r, g, b], np.float32) + 0.5, 0, 255).astype(np.uint8)


def _gamma(gamma: float) -> Callable[[np.ndarray], np.ndarray]:
    lut = np.clip((np.arange(256) / 255.0) ** gamma * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return lambda rgb: lut[rgb]


def _blur(sigma_frac: float) -> Callable[[np.ndarray], np.ndarray]:
    """Gaussian blur with sigma a fraction of the image width (sensor/lens sharpness)."""
    return lambda rgb: cv2.GaussianBlur(rgb, (0, 0), sigma_frac * rgb.shape[1])


def _noise(sigma: float, seed: int = 0) -> Callable[[np.ndarray], np.ndarray]:
    def apply(rgb: np.ndarray) -> np.ndarray:
        rng = np.random.default_rng(seed)
        return np.clip(rgb + rng.normal(0.0, sigma, rgb.shape) + 0.5, 0, 255).astype(np.uint8)
    return apply


def _jpeg(quality: int) -> Callable[[np.ndarray], np.ndarray]:
    def apply(rgb: np.ndarray) -> np.ndarray:
        ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        return cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
    return apply


def _vignette(strength: float) -> Callable[[np.ndarray], np.ndarray]:
    def apply(rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((x - w / 2) / (w / 2)) ** 2 + ((y - h / 2) / (h / 2)) ** 2
        gain = 1.0 - strength * np.clip(r2 / 2.0, 0, 1)
        return np.clip(rgb * gain[..., None] + 0.5, 0, 255).astype(np.uint8)
    return apply


# name -> (what it stands for, the change)
SHIFTS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "warm": ("white balance 1.2x red, 0.8x blue (tungsten-balanced camera outdoors, evening sun)", _gains(1.2, 1.0, 0.8)),
    "cool": ("white balance 0.8x red, 1.2x blue (shade, overcast auto white balance)", _gains(0.8, 1.0, 1.2)),
    "green": ("green cast 0.9x red, 1.1x green, 0.9x blue (a sensor without IR-cut tuning)", _gains(0.9, 1.1, 0.9)),
    "gamma_dark": ("tone curve gamma 1.5 (linear-ish camera output, darker mid-tones)", _gamma(1.5)),
    "gamma_bright": ("tone curve gamma 0.67 (lifted shadows, HDR-like tone mapping)", _gamma(0.67)),
    "blur": ("Gaussian blur, sigma 0.2 % of the width (a softer lens or defocus)", _blur(0.002)),
    "noise": ("Gaussian noise, sigma 8 grey levels (a small sensor in low light)", _noise(8.0)),
    "jpeg": ("JPEG quality 25 (compressed video)", _jpeg(25)),
    "vignette": ("vignetting, corners at 50 % brightness (a wide cheap lens)", _vignette(0.5)),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path, help="a meco dataset")
    ap.add_argument("--split", default="val")
    ap.add_argument("--shifts", nargs="+", default=list(SHIFTS), choices=list(SHIFTS))
    ap.add_argument("--out", type=Path, required=True, help="writes OUT/<shift>/")
    args = ap.parse_args()
    reader = DatasetReader(args.data)
    names = reader.names(args.split)
    for shift in args.shifts:
        what, change = SHIFTS[shift]
        root = args.out / shift
        with DatasetWriter(root, reader.class_set, source=f"{args.data} [{args.split}] with {what}") as writer:
            for name in names:
                s = reader.load(args.split, name)
                writer.write(args.split, name, change(s.rgb), s.depth_m, s.labels, intrinsics=s.intrinsics)
        print(f"{root}: {len(names)} frames, {what}")


if __name__ == "__main__":
    main()

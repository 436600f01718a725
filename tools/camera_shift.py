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
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np

from meco_core.data.camera_look import jpeg, sensor_noise, soften, tone_curve, vignette, white_balance
from meco_core.data.format import DatasetReader, DatasetWriter

# name -> (what it stands for, the change); fixed values, so every model meets the same cameras
SHIFTS: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "warm": ("white balance 1.2x red, 0.8x blue (tungsten-balanced camera outdoors, evening sun)",
             partial(white_balance, red=1.2, green=1.0, blue=0.8)),
    "cool": ("white balance 0.8x red, 1.2x blue (shade, overcast auto white balance)",
             partial(white_balance, red=0.8, green=1.0, blue=1.2)),
    "green": ("green cast 0.9x red, 1.1x green, 0.9x blue (a sensor without IR-cut tuning)",
              partial(white_balance, red=0.9, green=1.1, blue=0.9)),
    "gamma_dark": ("tone curve gamma 1.5 (linear-ish camera output, darker mid-tones)", partial(tone_curve, gamma=1.5)),
    "gamma_bright": ("tone curve gamma 0.67 (lifted shadows, HDR-like tone mapping)", partial(tone_curve, gamma=0.67)),
    "blur": ("Gaussian blur, sigma 0.2 % of the width (a softer lens or defocus)", partial(soften, sigma_frac=0.002)),
    "noise": ("Gaussian noise, sigma 8 grey levels (a small sensor in low light)",
              lambda rgb: sensor_noise(rgb, 8.0, np.random.default_rng(0))),
    "jpeg": ("JPEG quality 25 (compressed video)", partial(jpeg, quality=25)),
    "vignette": ("vignetting, corners at 50 % brightness (a wide cheap lens)", partial(vignette, strength=0.5)),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path, nargs="?", help="a meco dataset")
    ap.add_argument("--split", default="val")
    ap.add_argument("--shifts", nargs="+", default=list(SHIFTS), choices=list(SHIFTS))
    ap.add_argument("--out", type=Path, help="writes OUT/<shift>/")
    ap.add_argument("--list", action="store_true", help="print the shifts' names and stop")
    args = ap.parse_args()
    if args.list:
        print(" ".join(SHIFTS))
        return
    if args.data is None or args.out is None:
        ap.error("DATA and --out are required (or --list)")
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

"""Narrower cameras from real frames: centre crops of a dataset at a chosen horizontal FOV.

Why: the hidden depth sets include cameras of 48-85 degree HFOV, while the real frames with
lidar here are KITTI's (81-82 degrees) and one RELLIS frame (38). A centre crop of a KITTI
frame is exactly what a longer lens on the same car would have seen (same fx, fy; cx, cy
shifted by the crop), so cropping measures the camera-aware depth on real geometry at focal
lengths no lidar frame here has. Crops keep the full height (a 48-degree crop of KITTI is
642x375 px) and the depth and labels of the cropped pixels; each frame's intrinsics go to its
camera/<name>.txt.

    .venv/bin/python tools/hfov_crops.py data/kitti --split test --hfov 45 60 70 --out data/kitti_hfov
    .venv/bin/meco eval --checkpoint checkpoints/meco_golf.pt --data data/kitti_hfov/hfov45 --split test
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from meco_core.data.format import DatasetReader, DatasetWriter


def crop_to_hfov(sample, hfov_deg: float):
    """(rgb, depth, labels, intrinsics) of the centre crop of `sample` at `hfov_deg`, or None
    when the frame is already narrower."""
    fx, fy, cx, cy = sample.intrinsics
    h, w = sample.rgb.shape[:2]
    width = int(round(2.0 * fx * math.tan(math.radians(hfov_deg) / 2.0)))
    if width >= w:
        return None
    x0 = int(round(cx - width / 2.0))
    x0 = min(max(x0, 0), w - width)
    cut = slice(x0, x0 + width)
    depth = None if sample.depth_m is None else sample.depth_m[:, cut].copy()
    labels = None if sample.labels is None else sample.labels[:, cut].copy()
    return sample.rgb[:, cut].copy(), depth, labels, (fx, fy, cx - x0, cy)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path, help="a meco dataset whose frames carry intrinsics")
    ap.add_argument("--split", default="test")
    ap.add_argument("--hfov", type=float, nargs="+", required=True, help="degrees, one dataset each")
    ap.add_argument("--out", type=Path, required=True, help="writes OUT/hfov<deg>/")
    args = ap.parse_args()
    reader = DatasetReader(args.data)
    for hfov in args.hfov:
        root = args.out / f"hfov{hfov:g}"
        writer = DatasetWriter(root, reader.class_set, source=f"{args.data} centre-cropped to {hfov:g} deg HFOV")
        for name in reader.names(args.split):
            sample = reader.load(args.split, name)
            if sample.intrinsics is None:
                raise SystemExit(f"{args.data}: frame {name} has no intrinsics; cannot crop to an HFOV")
            crop = crop_to_hfov(sample, hfov)
            if crop is None:
                print(f"{name}: already narrower than {hfov:g} deg, skipped")
                continue
            rgb, depth, labels, intr = crop
            writer.write(args.split, name, rgb, depth, labels, intrinsics=intr)
        writer.close()
        print(f"{root}: {writer.written.get(args.split, 0)} frames")


if __name__ == "__main__":
    main()

"""CamVid (SegNet tutorial layout) -> meco-dataset/1.

Input layout: `ROOT/<split>/*.png` RGB and `ROOT/<split>annot/*.png` ids 0..10, 11 =
Unlabelled; splits train, val and test when present. Output keeps the CamVid class set
(ids 0..10, 11 -> 255); the `camvid->golf` remap in `meco_core.classes` is applied at
load time, so the converted data stays usable for the 11-class CamVid benchmark.
CamVid has no depth. With `pseudo=True` the importer adds geometric pseudo-depth
(`meco_core.data.pseudo_depth`) under an ASSUMED camera recorded in dataset.yaml: the
horizon at mid-height (the vanishing points of straight streets sit there: a level camera)
and a dashboard camera `camera_height` m above the road. Tree is left without depth
(it also covers flat grass verges, which are not upright).
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from meco_core.camera import default_intrinsics
from meco_core.classes import CAMVID, make_remap
from meco_core.data.format import DatasetFormatError, DatasetWriter
from meco_core.data.pseudo_depth import GROUND, MAX_GROUND_DEPTH_M, SKY, UPRIGHT, pseudo_depth, role_lut

SPLITS = ("train", "val", "test")
# ids 0..10 stay, 11 (Unlabelled) and anything unexpected -> 255
_LUT = make_remap({i: i for i in range(CAMVID.num_classes)})
ASSUMED_HFOV_DEG = 60.0
ASSUMED_HORIZON_FRAC = 0.5
ASSUMED_CAMERA_HEIGHT_M = 1.4
_ROLES = role_lut({CAMVID.names.index(n): r for n, r in {
    "Sky": SKY, "Road": GROUND, "Pavement": GROUND, "Building": UPRIGHT, "Pole": UPRIGHT, "SignSymbol": UPRIGHT,
    "Fence": UPRIGHT, "Car": UPRIGHT, "Pedestrian": UPRIGHT, "Bicyclist": UPRIGHT}.items()})


def convert_camvid(
    root: str | os.PathLike,
    out: str | os.PathLike,
    limit: int | None = None,
    splits: tuple[str, ...] | list[str] | None = None,
    progress: bool = True,
    pseudo: bool = False,
    hfov_deg: float = ASSUMED_HFOV_DEG,
    horizon_frac: float = ASSUMED_HORIZON_FRAC,
    camera_height: float = ASSUMED_CAMERA_HEIGHT_M,
    max_ground_depth: float = MAX_GROUND_DEPTH_M,
) -> dict[str, int]:
    """Convert every split found under `root`; returns {split: samples written}.

    `limit` keeps the first N images (sorted by name) per split, for quick tests.
    """
    root = Path(root)
    wanted = tuple(splits) if splits else SPLITS
    found = [s for s in wanted if (root / s).is_dir() and (root / f"{s}annot").is_dir()]
    if not found:
        raise FileNotFoundError(f"{root}: no CamVid split folders (expected e.g. train/ + trainannot/)")
    counts: dict[str, int] = {}
    intr = note = None
    if pseudo:  # CamVid frames are all 480x360
        fx, fy, cx, cy = default_intrinsics(360, 480, hfov_deg)
        intr = dict(fx=fx, fy=fy, cx=cx, cy=cy, width=480, height=360)
        note = (f"ASSUMED camera (CamVid has no calibration): HFOV {hfov_deg:g} deg, horizon at {horizon_frac:g} of "
                f"the height, {camera_height:g} m above the road; depth is geometric pseudo-depth, ground to "
                f"{max_ground_depth:g} m")
    with DatasetWriter(out, CAMVID, intrinsics=intr, source=f"CamVid (SegNet tutorial) from {root}",
                       camera_note=note or "") as writer:
        for split in found:
            images = sorted(p for p in (root / split).iterdir() if p.suffix.lower() in (".png", ".jpg"))
            if limit is not None:
                images = images[:limit]
            for img_path in tqdm(images, desc=f"camvid {split}", unit="img", disable=not progress):
                ann_path = root / f"{split}annot" / f"{img_path.stem}.png"
                bgr = cv2.imread(str(img_path), cv2.IMREAD_COLOR)
                ann = cv2.imread(str(ann_path), cv2.IMREAD_UNCHANGED)
                if bgr is None:
                    raise DatasetFormatError(f"cannot read {img_path}")
                if ann is None:
                    raise DatasetFormatError(f"missing or unreadable annotation {ann_path}")
                if ann.ndim == 3:  # some copies store ids replicated in 3 channels
                    ann = ann[:, :, 0]
                labels = _LUT[ann.astype(np.uint8)]
                depth = None
                if intr is not None:
                    if labels.shape != (intr["height"], intr["width"]):
                        raise DatasetFormatError(f"{img_path}: pseudo-depth assumes 480x360 frames, got "
                                                 f"{labels.shape[1]}x{labels.shape[0]}")
                    depth = pseudo_depth(labels, _ROLES, intr["fy"], horizon_frac * labels.shape[0], camera_height,
                                         max_ground_depth)
                writer.write(split, img_path.stem, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), depth_m=depth, labels=labels)
            counts[split] = len(images)
    return counts

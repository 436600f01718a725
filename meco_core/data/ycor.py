"""Yamaha-CMU Off-Road (YCOR) -> meco-dataset/1: real off-road frames, ycor classes,
geometric pseudo-depth.

Input layout (as in ../shared/data/ycor): `ROOT/train/<id>/rgb.jpg` (1024x544) and
`ROOT/train/<id>/labels.png` (palette PNG read as RGB; colours in `meco_core.classes.YCOR`,
white = void / ego vehicle -> 255, any other colour -> 255 and counted). Labels keep the
ycor class set; `ycor->golf` is applied at load time, as for CamVid.

Frames whose numeric id falls in `holdout` (a contiguous block, default 1000-1149) go to
split `val`, the rest to `train`: consecutive ids are seconds apart on one drive, so a
random split would leak near-duplicates of training frames into the frames used to choose.
`holdout=None` holds nothing out (a final fit on every labelled frame). `holdout_every=N`
keeps only every Nth frame of the block (by position, from its first) in `val` and trains on
the others: it measures what training on a frame's neighbours is worth on frames seen from
a few metres away, the relation a model trained on every frame has to new frames of the same drives.

YCOR has no depth and no calibration. With `pseudo_depth` the importer writes (for the
train split only) geometric pseudo-depth (`meco_core.data.pseudo_depth`) under an ASSUMED camera, recorded in
dataset.yaml (`intrinsics` and `camera_note`): horizontal field of view `hfov_deg`,
horizon at `horizon_frac` of the image height (read off frames with long straight trails:
the camera looks ~9 degrees down) and the camera `camera_height` m above the ground (an
ATV/UTV roof mount). For a canonical-focal model the assumed focal length cancels out of
ground depth; the camera height sets the metric scale.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm import tqdm

from meco_core.camera import default_intrinsics
from meco_core.classes import YCOR
from meco_core.data.format import DatasetFormatError, DatasetWriter
from meco_core.data.pseudo_depth import GROUND, MAX_GROUND_DEPTH_M, SKY, UPRIGHT, pseudo_depth, role_lut

DEFAULT_HOLDOUT = (1000, 1149)  # inclusive id range kept out of training (75 frames of 367)
DEFAULT_SIZE = (272, 512)  # half resolution: training crops are 240x320
ASSUMED_HFOV_DEG = 80.0
ASSUMED_HORIZON_FRAC = 0.33
ASSUMED_CAMERA_HEIGHT_M = 1.6

_ROLES = role_lut({
    YCOR.names.index("sky"): SKY,
    YCOR.names.index("rough_trail"): GROUND, YCOR.names.index("smooth_trail"): GROUND,
    YCOR.names.index("traversable_grass"): GROUND, YCOR.names.index("puddle"): GROUND,
    YCOR.names.index("low_vegetation"): GROUND,  # knee-high: nearer the ground plane than upright
    YCOR.names.index("high_vegetation"): UPRIGHT, YCOR.names.index("obstacle"): UPRIGHT,
})


def colors_to_ids(rgb_labels: np.ndarray) -> tuple[np.ndarray, int]:
    """(H, W, 3) RGB label image -> (H, W) uint8 ycor ids (255 for void and unknown colours),
    and the number of pixels with a colour that is neither a class nor void white."""
    key = (rgb_labels[..., 0].astype(np.int32) << 16) | (rgb_labels[..., 1].astype(np.int32) << 8) | rgb_labels[..., 2]
    ids = np.full(key.shape, 255, np.uint8)
    known = key == 0xFFFFFF
    for i, (r, g, b) in enumerate(YCOR.colors):
        hit = key == ((r << 16) | (g << 8) | b)
        ids[hit] = i
        known |= hit
    return ids, int((~known).sum())


def _frame_id(folder: Path) -> int:
    if not re.fullmatch(r"\d+", folder.name):
        raise DatasetFormatError(f"{folder}: YCOR frame folders are numeric ids")
    return int(folder.name)


def convert_ycor(root: str | os.PathLike, out: str | os.PathLike,
                 holdout: tuple[int, int] | None = DEFAULT_HOLDOUT, holdout_every: int = 1,
                 size: tuple[int, int] | None = DEFAULT_SIZE, pseudo: bool = True,
                 hfov_deg: float = ASSUMED_HFOV_DEG, horizon_frac: float = ASSUMED_HORIZON_FRAC,
                 camera_height: float = ASSUMED_CAMERA_HEIGHT_M, limit: int | None = None,
                 progress: bool = True, max_ground_depth: float = MAX_GROUND_DEPTH_M) -> dict[str, Any]:
    """Convert every frame under ROOT/train; returns counts per split and unknown-colour pixels."""
    root = Path(root)
    base = root / "train" if (root / "train").is_dir() else root
    folders = sorted((p for p in base.iterdir() if (p / "rgb.jpg").exists()), key=_frame_id)
    if not folders:
        raise FileNotFoundError(f"{root}: no <id>/rgb.jpg frames (expected the YCOR layout train/<id>/rgb.jpg)")
    if limit is not None:
        folders = folders[:limit]
    if holdout_every < 1:
        raise ValueError(f"holdout_every must be >= 1, got {holdout_every}")
    block = [f.name for f in folders if holdout is not None and holdout[0] <= _frame_id(f) <= holdout[1]]
    held_out = set(block[::holdout_every])
    counts: dict[str, int] = {}
    unknown = 0
    if size is None:
        first = cv2.imread(str(folders[0] / "rgb.jpg"), cv2.IMREAD_COLOR)
        if first is None:
            raise DatasetFormatError(f"cannot read {folders[0] / 'rgb.jpg'}")
        size = first.shape[:2]
    h, w = size
    fx, fy, cx, cy = default_intrinsics(h, w, hfov_deg)
    note = (f"ASSUMED camera (YCOR has no calibration): HFOV {hfov_deg:g} deg, horizon at {horizon_frac:g} of the "
            f"height, {camera_height:g} m above ground"
            + (f"; depth is geometric pseudo-depth (meco_core.data.pseudo_depth), ground to {max_ground_depth:g} m"
               if pseudo else ""))
    with_depth = 0
    with DatasetWriter(out, YCOR, intrinsics=dict(fx=fx, fy=fy, cx=cx, cy=cy, width=w, height=h),
                       source=f"YCOR from {root}", camera_note=note, image_format="jpg") as writer:
        for folder in tqdm(folders, desc="ycor", unit="frame", disable=not progress):
            bgr = cv2.imread(str(folder / "rgb.jpg"), cv2.IMREAD_COLOR)
            lab_bgr = cv2.imread(str(folder / "labels.png"), cv2.IMREAD_COLOR)
            if bgr is None:
                raise DatasetFormatError(f"cannot read {folder / 'rgb.jpg'}")
            if lab_bgr is None:
                raise DatasetFormatError(f"missing or unreadable {folder / 'labels.png'}")
            if lab_bgr.shape[:2] != bgr.shape[:2]:
                raise DatasetFormatError(f"{folder}: labels {lab_bgr.shape[:2]} differ from image {bgr.shape[:2]}")
            ids, bad = colors_to_ids(lab_bgr[..., ::-1])
            unknown += bad
            if bgr.shape[:2] != (h, w):
                bgr = cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA)
                ids = cv2.resize(ids, (w, h), interpolation=cv2.INTER_NEAREST_EXACT)
            split = "val" if folder.name in held_out else "train"
            # held-out frames are scored against labels only: pseudo-depth is not ground truth
            depth = (pseudo_depth(ids, _ROLES, fy, horizon_frac * h, camera_height, max_ground_depth)
                     if pseudo and split == "train" else None)
            with_depth += int(depth is not None and bool((depth > 0).any()))
            writer.write(split, folder.name, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), depth_m=depth, labels=ids)
            counts[split] = counts.get(split, 0) + 1
    return {"splits": counts, "unknown_colour_pixels": unknown, "frames_with_depth": with_depth,
            "camera_note": note}

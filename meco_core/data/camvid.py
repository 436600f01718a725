"""CamVid (SegNet tutorial layout) -> meco-dataset/1.

Input layout: `ROOT/<split>/*.png` RGB and `ROOT/<split>annot/*.png` ids 0..10, 11 =
Unlabelled; splits train, val and test when present. Output keeps the CamVid class set
(ids 0..10, 11 -> 255); the `camvid->golf` remap in `meco_core.classes` is applied at
load time, so the converted data stays usable for the 11-class CamVid benchmark.
CamVid has no depth: samples carry labels only.
"""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from meco_core.classes import CAMVID, make_remap
from meco_core.data.format import DatasetFormatError, DatasetWriter

SPLITS = ("train", "val", "test")
# ids 0..10 stay, 11 (Unlabelled) and anything unexpected -> 255
_LUT = make_remap({i: i for i in range(CAMVID.num_classes)})


def convert_camvid(
    root: str | os.PathLike,
    out: str | os.PathLike,
    limit: int | None = None,
    splits: tuple[str, ...] | list[str] | None = None,
    progress: bool = True,
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
    with DatasetWriter(out, CAMVID, source=f"CamVid (SegNet tutorial) from {root}") as writer:
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
                writer.write(split, img_path.stem, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), labels=labels)
            counts[split] = len(images)
    return counts

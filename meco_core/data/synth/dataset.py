"""Many frames: a meco-dataset/1 root written in parallel, contact sheets, the CLI entry.

Part of the procedural golf-course renderer; see meco_core.data.synth for the scene model.
"""
from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from meco_core.camera import default_intrinsics
from meco_core.defaults import MAX_DEPTH_M

from .common import CLASS_NAMES, DEFAULT_HFOV_DEG, ROUGH_LABELS
from .frame import SynthFrame, render_frame

def _render_job(job: tuple) -> SynthFrame:
    seed, index, split, h, w, beams, hfov, near, rough = job
    return render_frame(seed, index, h, w, beams, split=split, hfov_deg=hfov, near=near, rough=rough)


def _worker_init() -> None:
    cv2.setNumThreads(1)  # the pool provides the parallelism; 2 shared cores


def generate(out: str | Path, n: int, seed: int, split: str = "train", height: int = 240, width: int = 320,
             lidar_beams: int = 0, workers: int = 2, depth_source: str = "dense",
             hfov_deg: float | tuple[float, float] | None = DEFAULT_HFOV_DEG, progress: bool = True,
             near: bool = False, rough: str = "background") -> int:
    """Render frames 0..n-1 of (seed, split) into a meco-dataset/1 root; returns frames written.
    depth_source 'lidar' stores the sparse lidar depth (needs lidar_beams) instead of dense.
    near=True adds near scenery (render_frame); dataset.yaml's source then says "near=on".
    rough: the label of the rough and the first cut (render_frame); "fairway" adds "rough=fairway".
    Note the format stores depth as uint16 mm, so depth beyond 65.535 m becomes "no data"."""
    from tqdm import tqdm

    from meco_core.classes import get_class_set
    from meco_core.data.format import DatasetWriter

    if depth_source not in ("dense", "lidar"):
        raise ValueError(f"depth_source must be 'dense' or 'lidar', not {depth_source!r}")
    if depth_source == "lidar" and not lidar_beams:
        raise ValueError("depth_source='lidar' needs lidar_beams 32 or 64")
    intr = None  # hfov None or (low, high): each frame draws its own field of view, stored per frame
    if hfov_deg is not None and not isinstance(hfov_deg, (tuple, list)):
        fx, fy, cx, cy = default_intrinsics(height, width, hfov_deg)
        intr = dict(fx=fx, fy=fy, cx=cx, cy=cy, width=width, height=height)
    if rough not in ROUGH_LABELS:  # here, not in a worker process's traceback
        raise ValueError(f"rough must be one of {sorted(ROUGH_LABELS)}, not {rough!r}")
    src = f"meco synth seed={seed} hfov={hfov_deg} lidar={lidar_beams} depth={depth_source}"
    if near:  # only then: the default source text stays as it was
        src += " near=on"
    if rough != "background":
        src += f" rough={rough}"
    jobs = [(seed, i, split, height, width, lidar_beams, hfov_deg, bool(near), rough) for i in range(n)]
    written = 0
    with DatasetWriter(out, get_class_set("golf"), intrinsics=intr, source=src) as wr:
        # spawn, not fork: a fork after OpenCV has started its thread pool can deadlock the children
        pool = mp.get_context("spawn").Pool(workers, initializer=_worker_init) if workers > 1 else None
        try:
            frames = pool.imap(_render_job, jobs, chunksize=4) if pool else map(_render_job, jobs)
            for fr in tqdm(frames, total=n, desc=f"synth {split}", disable=not progress, unit="frame"):
                depth = fr.lidar_depth_m if depth_source == "lidar" else fr.depth_m
                cam = None if intr else tuple(fr.intrinsics[k] for k in ("fx", "fy", "cx", "cy"))
                wr.write(split, f"{fr.index:06d}", fr.rgb, depth, fr.labels, intrinsics=cam)
                written += 1
        finally:
            if pool:
                pool.close()
                pool.join()
    return written


def contact_sheet(frames: Sequence[SynthFrame], path: str | Path) -> Path:
    """PNG with one row per frame: RGB | depth (lidar points overlaid if any) | labels."""
    from meco_core.classes import get_class_set
    from meco_core.visualize import colorize_depth

    pal = get_class_set("golf").palette()
    rows = []
    h0, w0 = frames[0].rgb.shape[:2]
    for fr in frames:
        d = colorize_depth(fr.depth_m, MAX_DEPTH_M)
        if fr.lidar_depth_m is not None:
            d = np.where((fr.lidar_depth_m > 0)[..., None], 255, d // 3).astype(np.uint8)
        row = np.concatenate([fr.rgb, d, pal[fr.labels]], 1)
        if row.shape[0] != h0:
            row = cv2.resize(row, (3 * w0, h0), interpolation=cv2.INTER_AREA)
        rows.append(np.pad(row, ((0, 2), (0, 0), (0, 0)), constant_values=255))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), np.ascontiguousarray(np.concatenate(rows, 0)[..., ::-1])):
        raise OSError(f"could not write {path}")
    return path


def parse_hfov(text: str) -> float | tuple[float, float] | None:
    """'75' -> 75.0 (one camera); 'random' -> None (HFOV_RANGE_DEG per frame); 'random:30-90' -> (30, 90)."""
    if text == "random":
        return None
    if text.startswith("random:"):
        try:
            lo, hi = (float(v) for v in text[len("random:"):].split("-"))
        except ValueError:
            raise ValueError(f"--hfov {text!r}: expected random:LOW-HIGH, e.g. random:30-90") from None
        if not 1 <= lo <= hi < 179:
            raise ValueError(f"--hfov {text!r}: need 1 <= LOW <= HIGH < 179 degrees")
        return lo, hi
    return float(text)


def main_from_args(args: Any) -> int:
    """CLI entry (`meco data synth`): args.out, n, seed, split, size ('HxW' or None), lidar_beams,
    hfov, near, rough."""
    from meco_core.data.format import DatasetReader

    size = getattr(args, "size", None) or (240, 320)
    h, w = size if isinstance(size, (tuple, list)) else (int(v) for v in str(size).lower().split("x"))
    beams = int(getattr(args, "lidar_beams", 0) or 0)
    t0 = time.perf_counter()
    hfov = getattr(args, "hfov", None) or str(DEFAULT_HFOV_DEG)
    n = generate(args.out, int(args.n), int(args.seed), getattr(args, "split", None) or "train", h, w, beams,
                 workers=int(getattr(args, "workers", 2) or 2),
                 depth_source=getattr(args, "depth_source", None) or "dense",
                 hfov_deg=parse_hfov(str(hfov)), near=bool(getattr(args, "near", False)),
                 rough=getattr(args, "rough", None) or "background")
    dt = time.perf_counter() - t0
    reader = DatasetReader(args.out)
    split = getattr(args, "split", None) or "train"
    counts = np.zeros(len(CLASS_NAMES), np.int64)
    for name in reader.names(split)[: min(n, 200)]:
        lab = reader.load(split, name).labels
        if lab is not None:
            counts += np.bincount(lab.ravel(), minlength=256)[: len(CLASS_NAMES)]
    frac = " ".join(f"{c}={v / max(counts.sum(), 1):.3f}" for c, v in zip(CLASS_NAMES, counts))
    print(f"synth: {n} frames {w}x{h} -> {args.out} in {dt:.1f} s ({n / max(dt, 1e-9):.1f} frames/s)")
    print(f"class pixel fractions: {frac}")
    return 0


"""The one on-disk dataset format of meco (`meco-dataset/1`).

Every importer (CamVid, RELLIS, synthetic, rosbag) writes it and every consumer
(training, evaluation, replay) reads it, so conversions happen once and loaders stay
simple::

    ROOT/dataset.yaml
    ROOT/<split>/image/<name>.png|.jpg   RGB
    ROOT/<split>/depth/<name>.png        optional; uint16 millimetres, 0 = no data (sparse ok)
    ROOT/<split>/seg/<name>.png          optional; uint8 class ids, 255 = ignore
    ROOT/<split>/camera/<name>.txt       optional; "fx fy cx cy" of this frame (pixels of its
                                         image), for datasets whose frames differ in camera

dataset.yaml::

    format: meco-dataset/1
    classes: {name, names, colors}
    intrinsics: {fx, fy, cx, cy, width, height}   # optional; one camera for every frame
    camera_note: free text                          # optional; e.g. "assumed, not calibrated"
    splits: {train: count, ...}
    source: free text

Depth is stored as PNG millimetres because it is lossless, compact for sparse lidar, and
readable by every tool; 1 mm resolution and a 65.535 m range are enough for a golf cart.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from ..atomic_files import temp_beside
from ..errors import DiskWriteError, MecoError

from meco_core.camera import check_intrinsics
from meco_core.classes import ClassSet, get_class_set

FORMAT = "meco-dataset/1"
MAX_DEPTH_M = 65.535  # uint16 millimetres
IMAGE_EXTS = (".png", ".jpg")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_INTRINSIC_KEYS = ("fx", "fy", "cx", "cy", "width", "height")


class DatasetFormatError(MecoError, ValueError):
    """A dataset on disk (or a sample being written) does not follow meco-dataset/1."""


@dataclass
class Sample:
    """One frame: RGB always, depth and labels when the dataset has them."""

    rgb: np.ndarray  # (H, W, 3) uint8 RGB
    depth_m: np.ndarray | None  # (H, W) float32 metres, 0 = invalid
    labels: np.ndarray | None  # (H, W) uint8 class ids, 255 = ignore
    name: str
    # (fx, fy, cx, cy) in pixels of `rgb`: the frame's own (camera/<name>.txt), else the
    # dataset's when its size matches, else None (the model's default camera applies)
    intrinsics: tuple[float, float, float, float] | None = None


def depth_to_mm(depth_m: np.ndarray) -> tuple[np.ndarray, int]:
    """float metres -> uint16 millimetres; returns (mm, number of pixels beyond range).

    0, NaN, inf and negatives mean no data; values that round to 0 mm stay "no data".
    """
    d = np.asarray(depth_m, np.float64)
    valid = np.isfinite(d) & (d > 0)
    mm = np.zeros(d.shape, np.float64)
    mm[valid] = np.rint(d[valid] * 1000.0)
    too_far = mm > 65535
    mm[too_far] = 0
    return mm.astype(np.uint16), int(too_far.sum())


def _atomic_write_text(path: Path, text: str) -> None:
    _replace_all([(path, text.encode())])


def _encode(path: Path, img: np.ndarray, params: list[int] | None = None) -> bytes:
    """The file's bytes (format from its extension), encoded in memory so that writing can be atomic."""
    ok, buf = cv2.imencode(path.suffix, img, params or [])
    if not ok:
        raise DatasetFormatError(f"could not encode {path} ({img.shape} {img.dtype})")
    return buf.tobytes()


def _replace_all(files: list[tuple[Path, bytes | None]]) -> None:
    """Write the files of one sample (None: remove that file) all or nothing.

    Why (issue 20): cv2.imwrite truncated the previous file before writing, so a full disk left a
    broken PNG ("could not write", no reason given), and a sample failing half-way paired the new
    image with the previous labels. Each file goes to a temporary first; only when all are
    written are they renamed over the old ones (a rename needs no space). A failure removes the
    temporaries and raises a DiskWriteError naming the file: the previous sample stays whole."""
    written: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            if data is None:
                continue
            try:
                fd, tmp = temp_beside(path)
                written.append((tmp, path))
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
            except OSError as exc:
                raise DiskWriteError.of(path, exc) from exc
    except BaseException:
        for tmp, _ in written:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, path in written:
        os.replace(tmp, path)
    for path, data in files:
        if data is None:
            path.unlink(missing_ok=True)


def _check_intrinsics(intr: dict[str, Any] | None) -> dict[str, float] | None:
    if intr is None:
        return None
    missing = [k for k in _INTRINSIC_KEYS if k not in intr]
    if missing:
        raise DatasetFormatError(f"intrinsics lack {missing}; need {list(_INTRINSIC_KEYS)}")
    out: dict[str, Any] = {k: float(intr[k]) for k in ("fx", "fy", "cx", "cy")}
    out.update(width=int(intr["width"]), height=int(intr["height"]))
    return out


class DatasetWriter:
    """Writes samples into ROOT; `close()` (or leaving the `with` block) writes dataset.yaml.

    Writing into an existing dataset adds/overwrites samples: the class set must match
    and split counts are recounted from disk, so several importers can fill one root.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        class_set: ClassSet,
        intrinsics: dict | None = None,
        source: str = "",
        image_format: str = "png",
        camera_note: str = "",
    ) -> None:
        self.root = Path(root)
        self.camera_note = camera_note
        self.class_set = get_class_set(class_set)
        self.intrinsics = _check_intrinsics(intrinsics)
        self.source = source
        if image_format not in ("png", "jpg"):
            raise ValueError(f"image_format must be 'png' or 'jpg', not {image_format!r}")
        self.image_ext = "." + image_format
        self.depth_out_of_range = 0  # pixels > 65.535 m dropped (set to no data)
        self.written: dict[str, int] = {}
        self._closed = False
        self._existing = self._read_existing()

    def _read_existing(self) -> dict[str, Any] | None:
        meta_path = self.root / "dataset.yaml"
        if not meta_path.exists():
            return None
        meta = _load_meta(meta_path)
        old = get_class_set(meta["classes"])
        if not old.same_classes(self.class_set):
            raise DatasetFormatError(
                f"{self.root} holds class set {old.name!r} {old.names}; cannot add {self.class_set.name!r} "
                f"{self.class_set.names}"
            )
        old_intr = meta.get("intrinsics")
        if old_intr and self.intrinsics and _check_intrinsics(old_intr) != self.intrinsics:
            raise DatasetFormatError(f"{self.root}: intrinsics {old_intr} differ from the new {self.intrinsics}")
        return meta

    def write(
        self,
        split: str,
        name: str,
        rgb: np.ndarray,
        depth_m: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        intrinsics: tuple[float, float, float, float] | None = None,
    ) -> None:
        """Store one sample; depth in metres (invalid: 0/NaN/inf/<0), labels uint8 ids,
        intrinsics (fx, fy, cx, cy) of this frame when frames differ in camera."""
        if self._closed:
            raise RuntimeError("DatasetWriter is closed")
        for what, s in (("split", split), ("name", name)):
            if not isinstance(s, str) or not _NAME_RE.match(s):
                raise ValueError(f"{what} {s!r} must be a plain file name ([A-Za-z0-9_.-], no '/')")
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise DatasetFormatError(f"rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
        h, w = rgb.shape[:2]
        if self.intrinsics and (self.intrinsics["width"], self.intrinsics["height"]) != (w, h):
            raise DatasetFormatError(
                f"{name}: image {w}x{h} differs from intrinsics {self.intrinsics['width']}x{self.intrinsics['height']}"
            )
        mm = None
        if depth_m is not None:
            depth_m = np.asarray(depth_m)
            if not np.issubdtype(depth_m.dtype, np.floating):
                raise DatasetFormatError(f"{name}: depth_m must be float metres, got {depth_m.dtype} (millimetres?)")
            if depth_m.shape != (h, w):
                raise DatasetFormatError(f"{name}: depth {depth_m.shape} does not match image {(h, w)}")
            mm, n_far = depth_to_mm(depth_m)
            self.depth_out_of_range += n_far
        if labels is not None:
            labels = np.asarray(labels)
            if labels.dtype != np.uint8:
                raise DatasetFormatError(f"{name}: labels must be uint8, got {labels.dtype}")
            if labels.shape != (h, w):
                raise DatasetFormatError(f"{name}: labels {labels.shape} do not match image {(h, w)}")
            bad = (labels >= self.class_set.num_classes) & (labels != self.class_set.ignore_index)
            if bad.any():
                raise DatasetFormatError(
                    f"{name}: label ids {np.unique(labels[bad]).tolist()} outside {self.class_set.name!r} "
                    f"(0..{self.class_set.num_classes - 1}, ignore {self.class_set.ignore_index})"
                )

        base = self.root / split
        cam_text = None
        if intrinsics is not None:
            try:
                cam_text = " ".join(repr(v) for v in check_intrinsics(intrinsics)) + "\n"
            except ValueError as exc:
                raise DatasetFormatError(f"{name}: {exc}") from None
        for sub in ("image", "depth", "seg"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        bgr = np.ascontiguousarray(rgb[:, :, ::-1])
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if self.image_ext == ".jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 1]
        image_path = base / "image" / f"{name}{self.image_ext}"
        files: list[tuple[Path, bytes | None]] = [(image_path, _encode(image_path, bgr, params))]
        for sub, arr in (("depth", mm), ("seg", labels)):  # None: no stale depth/labels from an earlier write
            path = base / sub / f"{name}.png"
            files.append((path, None if arr is None else _encode(path, arr, [cv2.IMWRITE_PNG_COMPRESSION, 3])))
        cam_path = base / "camera" / f"{name}.txt"
        if cam_text is not None:
            cam_path.parent.mkdir(exist_ok=True)
        files.append((cam_path, None if cam_text is None else cam_text.encode()))
        # a rewrite with another extension must not leave a twin
        files += [(base / "image" / f"{name}{ext}", None) for ext in IMAGE_EXTS if ext != self.image_ext]
        _replace_all(files)  # the whole sample or nothing (see _replace_all)
        self.written[split] = self.written.get(split, 0) + 1

    def close(self) -> dict[str, Any]:
        """Write dataset.yaml atomically (merged with an existing one); returns its content."""
        if self._closed:
            return _load_meta(self.root / "dataset.yaml")
        self.root.mkdir(parents=True, exist_ok=True)
        old = self._existing or {}
        # counted from disk: samples written by earlier writers are included
        splits = {d.name: len(_image_names(d / "image")) for d in sorted(self.root.iterdir()) if (d / "image").is_dir()}
        sources = [s for s in (old.get("source", ""), self.source) if s]
        meta: dict[str, Any] = {
            "format": FORMAT,
            "classes": self.class_set.to_dict(),
            "intrinsics": self.intrinsics or old.get("intrinsics"),
            "splits": splits,
            "source": "; ".join(dict.fromkeys(sources)),
        }
        if meta["intrinsics"] is None:
            del meta["intrinsics"]
        note = self.camera_note or old.get("camera_note")
        if note:
            meta["camera_note"] = note
        _atomic_write_text(self.root / "dataset.yaml", yaml.safe_dump(meta, sort_keys=False, default_flow_style=None))
        self._closed = True
        return meta

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close()  # keep what was written so far even after an error


def split_folder(path: str | Path) -> tuple[Path, str] | None:
    """(root, split) when `path` is a split folder of a dataset (ROOT/test), else None.

    Users type the folder they see; tools accept it or say exactly what to type instead.
    """
    path = Path(path)
    if not (path / "dataset.yaml").exists() and (path.parent / "dataset.yaml").exists() and (path / "image").is_dir():
        return path.parent, path.name
    return None


def _load_meta(path: Path) -> dict[str, Any]:
    if not path.exists():
        inside = split_folder(path.parent)
        if inside:
            raise FileNotFoundError(f"{path.parent} is the {inside[1]!r} split of a dataset, not its root: "
                                    f"use --data {inside[0]} --split {inside[1]}")
        raise FileNotFoundError(f"{path} not found: not a meco dataset (convert with `meco data ...`)")
    with open(path) as f:
        meta = yaml.safe_load(f)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise DatasetFormatError(f"{path}: format is {got!r}, expected {FORMAT!r}")
    if "classes" not in meta:
        raise DatasetFormatError(f"{path}: no 'classes'")
    return meta


def _image_names(image_dir: Path) -> list[str]:
    return sorted({p.stem for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_EXTS})


class DatasetReader:
    """Reads a meco-dataset/1 root and validates every sample it loads."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.meta = _load_meta(self.root / "dataset.yaml")
        self.class_set: ClassSet = get_class_set(self.meta["classes"])
        self.intrinsics: dict[str, float] | None = _check_intrinsics(self.meta.get("intrinsics"))
        self.source: str = self.meta.get("source", "")
        self._names: dict[str, list[str]] = {}

    def splits(self) -> list[str]:
        """Splits present on disk (dataset.yaml lists the same after `close`)."""
        return sorted(p.name for p in self.root.iterdir() if (p / "image").is_dir())

    def names(self, split: str) -> list[str]:
        if split not in self._names:
            image_dir = self.root / split / "image"
            if not image_dir.is_dir():
                raise KeyError(f"{self.root}: no split {split!r}; splits: {self.splits()}")
            self._names[split] = _image_names(image_dir)
        return self._names[split]

    def _image_path(self, split: str, name: str) -> Path:
        for ext in IMAGE_EXTS:
            p = self.root / split / "image" / f"{name}{ext}"
            if p.exists():
                return p
        raise FileNotFoundError(f"{self.root}: no image {split}/image/{name}.png|.jpg")

    def has_depth(self, split: str, name: str) -> bool:
        return (self.root / split / "depth" / f"{name}.png").exists()

    def load(self, split: str, name: str) -> Sample:
        path = self._image_path(split, name)
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise DatasetFormatError(f"cannot decode {path}")
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        depth = labels = None
        mm = _read_plane(self.root / split / "depth" / f"{name}.png", np.uint16, (h, w),
                         "depth must be a 1-channel 16-bit PNG (millimetres)")
        depth = mm.astype(np.float32) / 1000.0 if mm is not None else None
        labels = _read_plane(self.root / split / "seg" / f"{name}.png", np.uint8, (h, w),
                             "labels must be a 1-channel 8-bit PNG")
        return Sample(rgb=rgb, depth_m=depth, labels=labels, name=name, intrinsics=self.frame_intrinsics(split, name, (h, w)))

    def frame_intrinsics(self, split: str, name: str, size: tuple[int, int]) -> tuple[float, float, float, float] | None:
        """(fx, fy, cx, cy) of one frame of image size (H, W): its own file, else the dataset's
        when the size matches, else None."""
        path = self.root / split / "camera" / f"{name}.txt"
        if path.exists():
            try:
                return check_intrinsics(path.read_text().split())
            except ValueError as exc:
                raise DatasetFormatError(f"{path}: expected 'fx fy cx cy': {exc}") from None
        intr = self.intrinsics
        if intr and (intr["height"], intr["width"]) == tuple(size):
            return intr["fx"], intr["fy"], intr["cx"], intr["cy"]
        return None

    def __repr__(self) -> str:
        return f"DatasetReader({str(self.root)!r}, classes={self.class_set.name!r}, splits={self.meta.get('splits')})"


def _read_plane(path: Path, dtype: type, size: tuple[int, int], what: str) -> np.ndarray | None:
    """An optional single-channel PNG of the given dtype and (H, W); None if absent."""
    if not path.exists():
        return None
    plane = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if plane is None or plane.dtype != dtype or plane.ndim != 2:
        raise DatasetFormatError(f"{path}: {what}")
    if plane.shape != size:
        raise DatasetFormatError(f"{path}: size {plane.shape[::-1]} differs from image {size[::-1]}")
    return plane

"""Your own labelled frames -> meco-dataset/1: a folder of images and a folder of masks, as a
labelling tool exports them (CVAT's "Segmentation mask", Label Studio, LabelMe, GIMP layers).

Why: the shipped golf model has never seen your course; a few dozen frames of it labelled in
golf classes are what teaches it that your grass is fairway (README "Fine-tune on your own
cart"). Tools export masks two ways, both read here:
- class ids: a one-channel or palette-mode PNG whose values are ids of the target class set
  (255 = unlabelled); anything else is an error naming the values;
- colours: an RGB PNG plus the palette that says which colour is which label (`--palette`:
  CVAT's `labelmap.txt`, `name:r,g,b::` per line, or a YAML `{name: [r, g, b]}`). Label names
  reach the target classes by name, or by `--map "grass=fairway,sand=hazard,path=road"` (a name
  mapped to `ignore` becomes 255). A label neither a target class nor mapped is an error before
  anything is written; a colour not in the palette becomes 255 and is counted.
Images and masks pair by file stem; unpaired images are counted and listed, not guessed.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from PIL import Image

from meco_core.camera import camera_of_frame, parse_intrinsics
from meco_core.classes import IGNORE_INDEX, ClassSet, get_class_set
from meco_core.data.format import DatasetFormatError, DatasetWriter
from meco_core.image_codec import IMAGE_FILE_SUFFIXES, ImageCodecError, read_image_file

IGNORE_NAMES = frozenset({"ignore", "void", "unlabelled", "unlabeled"})


def read_palette(path: str | os.PathLike) -> dict[str, tuple[int, int, int]]:
    """Label name -> RGB from CVAT's labelmap.txt (`name:r,g,b:parts:actions`) or a YAML mapping."""
    path = Path(path)
    text = path.read_text()
    palette: dict[str, tuple[int, int, int]] = {}
    if path.suffix.lower() in (".yaml", ".yml"):
        data = yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise DatasetFormatError(f"{path}: expected a mapping of label name -> [r, g, b]")
        items = list(data.items())
    else:
        items = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(":")
            if len(parts) < 2:
                raise DatasetFormatError(f"{path}: expected 'name:r,g,b::', got {line!r}")
            items.append((parts[0], parts[1].split(",")))
    for name, rgb in items:
        try:
            r, g, b = (int(v) for v in rgb)
        except (TypeError, ValueError):
            raise DatasetFormatError(f"{path}: colour of {name!r} must be three integers, got {rgb!r}") from None
        if not all(0 <= v <= 255 for v in (r, g, b)):
            raise DatasetFormatError(f"{path}: colour of {name!r} out of 0-255: {rgb!r}")
        palette[str(name)] = (r, g, b)
    if not palette:
        raise DatasetFormatError(f"{path}: no labels in the palette")
    return palette


def parse_label_map(spec: str | None) -> dict[str, str]:
    """'grass=fairway,sand=hazard' (or a YAML file of the same mapping) -> {source: target}."""
    if not spec:
        return {}
    if Path(spec).is_file():
        data = yaml.safe_load(Path(spec).read_text()) or {}
        if not isinstance(data, dict):
            raise DatasetFormatError(f"{spec}: expected a mapping of label name -> class name")
        return {str(k): str(v) for k, v in data.items()}
    out = {}
    for item in spec.split(","):
        if "=" not in item:
            raise DatasetFormatError(f"--map entries are SOURCE=TARGET, got {item.strip()!r}")
        src, dst = (s.strip() for s in item.split("=", 1))
        out[src] = dst
    return out


def colour_lut(palette: dict[str, tuple[int, int, int]], label_map: dict[str, str],
               target: ClassSet) -> dict[int, int]:
    """Packed 0xRRGGBB -> target class id (IGNORE_INDEX for ignored labels). Every palette label
    must reach a target class, by its own name or through `label_map`: else an error naming them."""
    unknown_targets = sorted({v for v in label_map.values() if v not in target.names and v not in IGNORE_NAMES})
    if unknown_targets:
        raise DatasetFormatError(f"--map targets {unknown_targets} are not {target.name!r} classes "
                                 f"({', '.join(target.names)}) or 'ignore'")
    lut, unmapped = {}, []
    for name, (r, g, b) in palette.items():
        dst = label_map.get(name, name)
        if dst in IGNORE_NAMES:
            lut[(r << 16) | (g << 8) | b] = IGNORE_INDEX
        elif dst in target.names:
            lut[(r << 16) | (g << 8) | b] = target.names.index(dst)
        else:
            unmapped.append(name)
    if unmapped:
        raise DatasetFormatError(f"labels {unmapped} are not {target.name!r} classes ({', '.join(target.names)}): "
                                 f"map them, e.g. --map \"{unmapped[0]}=background\" (or ={unmapped[0]}=ignore)")
    return lut


def mask_to_ids(path: Path, lut: dict[int, int] | None, target: ClassSet) -> tuple[np.ndarray, int]:
    """A mask file -> (H, W) uint8 target ids and the number of pixels of a colour not in the palette."""
    with Image.open(path) as img:
        if img.mode in ("L", "P", "I", "I;16") and not (img.mode == "P" and lut is not None):
            ids = np.asarray(img).astype(np.int64)
            bad = np.unique(ids[(ids >= target.num_classes) & (ids != IGNORE_INDEX)])
            if bad.size:
                raise DatasetFormatError(f"{path}: class ids {bad[:10].tolist()} are not {target.name!r} ids "
                                         f"(0-{target.num_classes - 1}, {IGNORE_INDEX} unlabelled); a colour mask "
                                         "needs --palette")
            return ids.astype(np.uint8), 0
        if lut is None:
            raise DatasetFormatError(f"{path}: a colour mask ({img.mode}) needs --palette to say which colour is "
                                     "which label")
        rgb = np.asarray(img.convert("RGB"))
    key = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
    ids = np.full(key.shape, IGNORE_INDEX, np.uint8)
    known = np.zeros(key.shape, bool)
    for packed, cls in lut.items():
        hit = key == packed
        ids[hit] = cls
        known |= hit
    return ids, int((~known).sum())


def _check_same_size(image_path: Path, mask_path: Path, mask_hw: tuple[int, ...]) -> None:
    try:
        with Image.open(image_path) as img:  # reads the header only
            w, h = img.size
    except OSError as exc:
        raise DatasetFormatError(f"{image_path}: not a readable image ({exc})") from None
    if (h, w) != tuple(mask_hw):
        raise DatasetFormatError(f"{mask_path}: mask {mask_hw[1]}x{mask_hw[0]} but image {w}x{h}")


def convert_labelled_folder(images: str | os.PathLike, masks: str | os.PathLike, out: str | os.PathLike, *,
                            target: str = "golf", palette: str | None = None, label_map: str | None = None,
                            split: str = "train", hfov: float | None = None, intrinsics: str | None = None,
                            intrinsics_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """Write every image with a mask of the same stem as one labelled sample; returns statistics."""
    images, masks = Path(images), Path(masks)
    for folder in (images, masks):
        if not folder.is_dir():
            raise FileNotFoundError(f"no such folder: {folder}")
    classes = get_class_set(target)
    given = parse_intrinsics(intrinsics) if intrinsics is not None else None
    lut = colour_lut(read_palette(palette), parse_label_map(label_map), classes) if palette else None
    if lut is None and label_map:
        raise DatasetFormatError("--map renames palette labels: it needs --palette")
    mask_by_stem = {p.stem: p for p in masks.iterdir() if p.suffix.lower() in (".png", ".bmp", ".tif", ".tiff")}
    frames = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_FILE_SUFFIXES)
    paired = [p for p in frames if p.stem in mask_by_stem]
    unpaired = [p.name for p in frames if p.stem not in mask_by_stem]
    if not paired:
        raise DatasetFormatError(f"no image in {images} has a mask of the same name in {masks} "
                                 f"({len(frames)} images, {len(mask_by_stem)} masks)")
    for image_path in paired:  # every mask checked before anything is written: a bad one is found in seconds
        ids, _ = mask_to_ids(mask_by_stem[image_path.stem], lut, classes)
        _check_same_size(image_path, mask_by_stem[image_path.stem], ids.shape)
    stats: dict[str, Any] = {"written": 0, "unpaired_images": unpaired, "unknown_colour_pixels": 0,
                             "class_pixels": dict.fromkeys(classes.names, 0)}
    with DatasetWriter(out, classes, source=f"labelled frames from {images} + {masks}") as writer:
        for image_path in paired:
            try:
                rgb = read_image_file(image_path)
            except ImageCodecError as exc:
                raise DatasetFormatError(str(exc)) from None
            ids, unknown = mask_to_ids(mask_by_stem[image_path.stem], lut, classes)
            name = re.sub(r"[^A-Za-z0-9_.-]", "_", image_path.stem)  # the dataset's file-name rule
            writer.write(split, name, rgb, labels=ids, intrinsics=camera_of_frame(rgb.shape[:2], hfov, given,
                                                                                   intrinsics_size))
            stats["written"] += 1
            stats["unknown_colour_pixels"] += unknown
            counts = np.bincount(ids.ravel(), minlength=256)
            for i, n in enumerate(classes.names):
                stats["class_pixels"][n] += int(counts[i])
    return stats

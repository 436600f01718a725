"""Frames from files a user points at: images, folders of images, videos.

`meco predict` runs a model on whatever a user has (a folder of JPEGs from a phone, a video of
a drive); this module turns those paths into named RGB frames. A file that cannot be read is a
`FrameFile` with an `error` instead of pixels, so one broken file is reported and counted, never
the end of a run over thousands.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from meco_core.image_codec import IMAGE_FILE_SUFFIXES, ImageCodecError, read_image_file

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})


@dataclass
class FrameFile:
    """One frame: a name unique in the run (file stem, or video stem + frame index) and its
    HxWx3 uint8 RGB pixels, or the reason it has none."""

    name: str
    source: str
    rgb: np.ndarray | None = None
    error: str | None = None


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Image and video files named directly or found in the named folders (sorted, not
    recursive). A missing path is a FileNotFoundError; a folder with nothing usable a ValueError."""
    files: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_FILE_SUFFIXES | VIDEO_SUFFIXES)
            if not found:
                raise ValueError(f"{path}: no images ({', '.join(sorted(IMAGE_FILE_SUFFIXES))}) or videos in this folder")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return files


def count_frames(files: list[Path], every: int = 1) -> int | None:
    """Frames `iter_frames` will yield, for a progress bar (None when a video does not say)."""
    total = 0
    for path in files:
        if path.suffix.lower() in VIDEO_SUFFIXES:
            cap = cv2.VideoCapture(str(path))
            n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
            cap.release()
            if n <= 0:
                return None
            total += (n + every - 1) // every
        else:
            total += 1
    return total


def _unique(name: str, seen: set[str]) -> str:
    out, k = name, 2
    while out in seen:
        out, k = f"{name}_{k}", k + 1
    seen.add(out)
    return out


def _read_image(path: Path) -> tuple[np.ndarray | None, str | None]:
    try:
        return read_image_file(path), None
    except ImageCodecError as exc:
        return None, str(exc)


def iter_frames(files: list[Path], every: int = 1) -> Iterator[FrameFile]:
    """Each image once and every `every`-th frame of each video, in order."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    seen: set[str] = set()
    for path in files:
        if path.suffix.lower() not in VIDEO_SUFFIXES:
            rgb, error = _read_image(path)
            yield FrameFile(_unique(path.stem, seen), str(path), rgb, error)
            continue
        cap = cv2.VideoCapture(str(path))
        if not cap.isOpened():
            yield FrameFile(_unique(path.stem, seen), str(path), error="not a video OpenCV can open")
            continue
        try:
            index = 0
            while True:
                ok = cap.grab()
                if not ok:
                    break
                if index % every == 0:
                    ok, bgr = cap.retrieve()
                    name = _unique(f"{path.stem}_{index:06d}", seen)
                    if ok and bgr is not None:
                        yield FrameFile(name, f"{path}#{index}", cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
                    else:
                        yield FrameFile(name, f"{path}#{index}", error="frame could not be decoded")
                index += 1
        finally:
            cap.release()

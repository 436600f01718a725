"""Temporary files beside their destination, for writes that rename over it when complete.

Why one helper: `tempfile.mkstemp` creates files readable by their owner only (0600), and a
rename keeps that mode, so every checkpoint, dataset file and ONNX model written atomically
came out unreadable to anyone else (a ROS node running as a service user, a second account on
the vehicle, a container). The temporary gets the mode a plain `open(path, "w")` would give it.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

FILE_MODE = 0o644  # what open() gives under the usual umask 022: everyone reads, the owner writes


def temp_beside(path: str | os.PathLike) -> tuple[int, Path]:
    """(open file descriptor, path) of a new temporary file in `path`'s folder, mode FILE_MODE.

    Raises OSError (missing or read-only folder) like mkstemp; the caller renames it over `path`."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:  # a filesystem without modes (e.g. some network mounts): keep mkstemp's
        pass
    return fd, Path(name)

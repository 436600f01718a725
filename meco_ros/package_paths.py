"""Where the ROS package's own files are: the places a relative checkpoint path is tried.

The model library resolves paths only against the working directory and the roots its
caller passes (`meco_core.inference.find_checkpoint`); the ROS package knows its own
layout: the ament share directory of an installed (colcon) package, and the source
checkout it runs from in development (`make setup` installs it editable).
"""
from __future__ import annotations

from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[1]  # the checkout, when run from source


def share_dir() -> Path | None:
    """The installed package's share directory (checkpoints/, config/), if installed as one."""
    try:
        from ament_index_python.packages import get_package_share_directory

        return Path(get_package_share_directory("meco_ros"))
    except Exception:  # noqa: BLE001 - not installed as an ament package: source tree only
        return None


def checkpoint_roots() -> tuple[Path, ...]:
    """Directories a relative checkpoint path is tried under, after the working directory."""
    share = share_dir()
    return (*((share,) if share else ()), SOURCE_ROOT)


def find_package_checkpoint(path: str | Path) -> Path | None:
    """A checkpoint given to a node or tool: as given, else under the package's own roots."""
    from meco_core.inference import find_checkpoint

    return find_checkpoint(path, checkpoint_roots())

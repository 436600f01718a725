"""Fast DDS shared-memory files left in /dev/shm by processes that died: find and remove them.

Why: every DDS participant creates a shared-memory segment (128 MB with
config/fastdds_profile.xml, touched pages held in RAM) and removes it only in its C++
destructor. A process that never runs that destructor (SIGKILL, the OOM killer, a hung exit
ended by the node's exit deadline) leaves the segment behind: on a vehicle whose drivers are
restarted for days, /dev/shm (RAM) fills up; on this machine 1,400 such files (22 GB) once
got a test run OOM-killed. Fast DDS's own `fastdds shm clean` does the same job but needs
psutil in the system Python, which a ROS install from wheels lacks; so the perception node
does it itself, at start-up and every STALE_CHECK_PERIOD_S.

A segment is a zombie when nobody holds the lock Fast DDS keeps on it: its owner takes an
exclusive flock on the segment's `_el` lock file when it creates it and holds it while alive,
so a lock we can take ourselves means the owner is gone. Lock files younger than `min_age_s`
are left alone (an owner between creating its lock file and locking it). Ports (the
`fastdds_port<N>` files, one per port number, shared and reused by every new participant
on that port) are left alone: their number is bounded, and removing one that a starting
process is opening would cut that process off.
"""
from __future__ import annotations

import fcntl
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

SHM_DIR = Path("/dev/shm")
MIN_AGE_S = 2.0  # younger lock files are left alone (see above)
STALE_CHECK_PERIOD_S = 30.0  # how often the perception node looks (one listdir, a flock per segment)
_SEGMENT_LOCK = re.compile(r"^(fastdds_[0-9a-z]{16})_el$")  # a participant's segment (random name)


@dataclass(frozen=True)
class Removed:
    """What `remove_stale_segments` removed: segments of dead processes and the memory their
    files held (allocated blocks, not their nominal size), and how many it left in use."""

    segments: int = 0
    bytes: int = 0
    in_use: int = 0

    def __str__(self) -> str:
        return (f"removed {self.segments} stale Fast DDS shared-memory segment(s) ({self.bytes / 2**20:.0f} MB) "
                f"left by processes that died; {self.in_use} in use")


def _locked(path: Path) -> bool:
    """True if a live process holds the lock (or the file is not ours to lock)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:  # another user's file: not ours to judge
        return True
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except OSError:
        return True
    finally:
        os.close(fd)  # also releases our lock


def segment_names(shm_dir: Path = SHM_DIR) -> list[str]:
    """The Fast DDS participant segments in `shm_dir` (by their `<name>_el` lock files), live or not."""
    try:
        names = os.listdir(shm_dir)
    except OSError:
        return []
    return sorted(m.group(1) for m in map(_SEGMENT_LOCK.match, names) if m)


def remove_stale_segments(shm_dir: Path = SHM_DIR, min_age_s: float = MIN_AGE_S) -> Removed:
    """Remove the Fast DDS participant segments in `shm_dir` whose owners are gone."""
    now = time.time()
    removed = freed = in_use = 0
    for name in segment_names(shm_dir):
        lock, segment = shm_dir / f"{name}_el", shm_dir / name
        try:
            young = now - lock.stat().st_ctime < min_age_s
        except FileNotFoundError:
            continue
        if young or _locked(lock):
            in_use += 1
            continue
        for path in (segment, lock):
            try:
                freed += path.stat().st_blocks * 512
                path.unlink()
            except OSError:  # gone meanwhile, or another user's file in a sticky /dev/shm
                pass
        removed += 1
    return Removed(segments=removed, bytes=freed, in_use=in_use)


def segments_locked_by(pid: int, shm_dir: Path = SHM_DIR) -> set[str]:
    """The participant segments whose owner lock `pid` holds: that process's own (read from
    /proc/locks; a flock from a second descriptor would fail for the owner as for anyone)."""
    try:
        locks = Path("/proc/locks").read_text()
    except OSError:
        return set()
    held = set()
    for line in locks.splitlines():
        fields = line.split()  # "1: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> 0 EOF"
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[4] == str(pid):
            held.add(fields[5].rsplit(":", 1)[-1])
    own = set()
    for name in segment_names(shm_dir):
        try:
            if str((shm_dir / f"{name}_el").stat().st_ino) in held:
                own.add(name)
        except OSError:
            continue
    return own


def remove_own_segments(shm_dir: Path = SHM_DIR) -> int:
    """Unlink this process's own participant segments (and their lock files) before it ends
    without running Fast DDS's destructors; returns how many. The memory goes when the last
    process mapping a segment ends; peers that have it open keep reading until then."""
    removed = 0
    for name in sorted(segments_locked_by(os.getpid(), shm_dir)):
        for path in (shm_dir / name, shm_dir / f"{name}_el"):
            try:
                path.unlink()
            except OSError:
                pass
        removed += 1
    return removed

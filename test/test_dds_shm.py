"""meco_ros.dds_shm: Fast DDS segments of dead processes are removed, live ones never."""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meco_ros.dds_shm import SHM_DIR, remove_stale_segments, segments_locked_by
from meco_ros.proc import ros_env


def _segment(shm: Path, name: str, blocks: int = 4) -> Path:
    """A segment file with `blocks` pages written, and its lock file."""
    (shm / name).write_bytes(b"\1" * 4096 * blocks)
    lock = shm / f"{name}_el"
    lock.write_bytes(b"")
    return lock


def test_removes_unlocked_keeps_locked_young_and_foreign_files(tmp_path: Path) -> None:
    dead = _segment(tmp_path, "fastdds_0123456789abcdef", blocks=4)
    alive = _segment(tmp_path, "fastdds_fedcba9876543210")
    port = tmp_path / "fastdds_port7000_el"  # ports are shared and reused: never touched
    port.write_bytes(b"")
    other = tmp_path / "some_other_app_0123456789abcdef_el"
    other.write_bytes(b"")
    held = os.open(alive, os.O_RDWR)
    fcntl.flock(held, fcntl.LOCK_EX)  # the owner's lock, as Fast DDS holds it
    try:
        young = remove_stale_segments(tmp_path)  # every lock file was just created
        assert (young.segments, young.in_use) == (0, 2) and dead.exists()
        removed = remove_stale_segments(tmp_path, min_age_s=0.0)
    finally:
        os.close(held)
    assert removed.segments == 1 and removed.in_use == 1
    assert removed.bytes >= 4 * 4096 and "removed 1 stale" in str(removed)
    assert not dead.exists() and not (tmp_path / "fastdds_0123456789abcdef").exists()
    assert alive.exists() and (tmp_path / "fastdds_fedcba9876543210").exists()
    assert port.exists() and other.exists()
    assert remove_stale_segments(tmp_path / "missing").segments == 0


_PARTICIPANT = """
import os, sys, time, rclpy
rclpy.init()
node = rclpy.create_node("shm_probe")
print(" ".join(sorted(f for f in os.listdir("/dev/shm") if f.endswith("_el"))), flush=True)
time.sleep(60)
"""


def _start_participant() -> tuple[subprocess.Popen, set[str]]:
    proc = subprocess.Popen([sys.executable, "-c", _PARTICIPANT], env=ros_env(), stdout=subprocess.PIPE, text=True)
    return proc, set(proc.stdout.readline().split())


@pytest.mark.shared_shm  # sweeps /dev/shm with min_age 0: no other test's participant may be starting
def test_a_killed_participants_segments_go_a_live_ones_stay() -> None:
    """Real Fast DDS participants (config/fastdds_profile.xml): SIGKILL leaves the segment."""
    before = set(os.listdir(SHM_DIR))
    killed, _ = _start_participant()
    killed_files = set(os.listdir(SHM_DIR)) - before
    killed.send_signal(signal.SIGKILL)
    killed.wait(10)
    alive, _ = _start_participant()
    try:
        alive_files = set(os.listdir(SHM_DIR)) - before - killed_files
        killed_segments = {f for f in killed_files if f.startswith("fastdds_") and "port" not in f}
        alive_segments = {f for f in alive_files if f.startswith("fastdds_") and "port" not in f}
        assert killed_segments and alive_segments, (killed_files, alive_files)
        time.sleep(0.1)
        removed = remove_stale_segments(min_age_s=0.0)
        left = set(os.listdir(SHM_DIR))
        assert removed.segments >= len(killed_segments) // 2
        assert not (killed_segments & left), f"a dead process's segment is still there: {killed_segments & left}"
        assert alive_segments <= left, f"a live process's segment was removed: {alive_segments - left}"
    finally:
        alive.kill()
        alive.wait(10)
        remove_stale_segments(min_age_s=0.0)


_EXITS_WITHOUT_TEARDOWN = """
import os, sys, rclpy
from meco_ros import dds_shm
from meco_ros.node.process_guards import exit_without_dds_teardown
rclpy.init()
node = rclpy.create_node("shm_own_probe")
print(" ".join(dds_shm.segments_locked_by(os.getpid())), flush=True)
exit_without_dds_teardown(7)
"""


@pytest.mark.shared_shm  # sweeps /dev/shm with min_age 0: no other test's participant may be starting
def test_a_process_that_skips_dds_teardown_unlinks_only_its_own_segments() -> None:
    """`meco replay-eval`'s exit (no Fast DDS destructors, see `exit_without_dds_teardown`):
    the process's own participant segments are gone after it, a live neighbour's are not, and
    shared port files stay; the exit code is the one asked for."""
    before = set(os.listdir(SHM_DIR))
    alive, _ = _start_participant()
    try:
        time.sleep(0.2)
        # the neighbour's own participant segments and the port files that came with it: a file some other
        # process left before (a finishing process of an earlier test) may go with that process (CI, session 28)
        neighbour_segments = segments_locked_by(alive.pid)
        assert neighbour_segments, "the live neighbour holds no participant segment"
        neighbour = {*neighbour_segments, *(f"{n}_el" for n in neighbour_segments),
                     *(f for f in set(os.listdir(SHM_DIR)) - before if "port" in f)}
        proc = subprocess.run([sys.executable, "-c", _EXITS_WITHOUT_TEARDOWN], env=ros_env(), capture_output=True,
                              text=True, timeout=60)
        own = set(proc.stdout.split())
        assert proc.returncode == 7, proc.stderr[-2000:]
        assert own and all(name.startswith("fastdds_") and "port" not in name for name in own), own
        left = set(os.listdir(SHM_DIR))
        assert not ({*own, *(f"{n}_el" for n in own)} & left), f"own segments left: {own & left}"
        assert neighbour <= left, f"a live process's files were removed: {neighbour - left}"
    finally:
        alive.kill()
        alive.wait(10)
        remove_stale_segments(min_age_s=0.0)

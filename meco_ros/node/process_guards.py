"""Process-level guards of the node process: glibc memory behaviour and a bounded exit.

Why a module of their own: they act on the whole process (malloc arenas, signals, exit),
not on the node, and they are tested in a bare subprocess that must not import ROS or torch.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import sys
import threading
import time
from typing import NoReturn

MALLOC_ARENAS = 2  # glibc malloc arenas of the node process (see limit_malloc_arenas)
SHUTDOWN_DEADLINE_S = 8.0  # Ctrl-C to process exit, at most (see exit_if_teardown_hangs)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> None:
    """Cap glibc's per-thread malloc arenas (mallopt M_ARENA_MAX), before any thread starts.

    Why: every configure starts new inference and publish threads, glibc gives new threads
    new arenas, and freed model memory stayed in the arenas of threads that had ended: with
    the golf model on ONNX Runtime RSS grew 969 -> 1336 MB over 50 lifecycle cycles even with
    malloc_trim; with 2 arenas it stays flat (821 -> 835-839 MB over 16 in-process cycles).
    The environment's MALLOC_ARENA_MAX, where set, wins."""
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, int(arenas))  # M_ARENA_MAX
    except (OSError, AttributeError):  # not glibc
        pass


def exit_if_teardown_hangs(code: int, name: str, deadline_s: float = SHUTDOWN_DEADLINE_S) -> None:
    """Guarantee the process ends within `deadline_s` of a stop, with `code`.

    Why: once in a CI run a node that had answered every frame never exited on SIGINT, stuck
    in Fast DDS's participant teardown (see `exit_without_dds_teardown`, which the node now
    skips). What is left after a stop, the node's own threads finishing their frame, is still
    bounded: a launch file would escalate to SIGTERM and SIGKILL after its own timeouts; here
    the node logs why and leaves with the exit code its stop earned. A daemon thread covers the
    cleanup calls; SIGALRM, left at its default action (terminate), covers the case where a C
    call holds the GIL and no Python runs."""
    def watchdog() -> None:
        time.sleep(deadline_s)
        sys.stderr.write(f"[{name}] shutdown did not finish within {deadline_s:.0f} s "
                         f"(DDS teardown): exiting anyway with code {code}\n")
        sys.stderr.flush()
        os._exit(code)

    threading.Thread(target=watchdog, name="meco-exit-deadline", daemon=True).start()
    if hasattr(signal, "setitimer"):
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, deadline_s + 2.0)


def exit_without_finalization(code: int) -> NoReturn:
    """Flush what was written and end the process now with `code`, skipping interpreter
    finalization and C++ static destructors.

    Why: the node has already stopped its threads, destroyed itself and shut rclpy down when
    this runs; what finalization would add is DDS teardown, which can block (see
    `exit_if_teardown_hangs`). Once a node that could not load its checkpoint hung there
    past the deadline and ended by SIGALRM (exit -14) instead of its 1."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more to flush
            pass
    try:
        ctypes.CDLL(None).fflush(None)  # C stdio buffers (rcutils logging)
    except (OSError, AttributeError):
        pass
    os._exit(code)


def return_freed_memory() -> None:
    """Collect the released model, then hand freed heap back to the OS (glibc malloc_trim).

    Why: a lifecycle manager may configure and clean up the node many times; the model's
    buffers (torch's checkpoint load, ONNX Runtime's session) are freed, but glibc kept the
    pages, and RSS grew by ~9 MB per cycle with the golf model on ONNX Runtime (fault case
    lifecycle_cycles: +43 % after 50 cycles)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def exit_without_dds_teardown(code: int) -> NoReturn:
    """End the process with `code` without destroying its Fast DDS participant: unlink its own
    shared-memory segments, then `exit_without_finalization`. For a process whose work is done
    (its outputs published, its report written).

    Why: Fast DDS 3.2.2 (the ROS 2 Kilted wheels; fixed upstream in 3.2.3 by
    eProsima/Fast-DDS#6066) can block forever destroying a participant: closing a TCP channel
    (the LARGE_DATA profile carries discovery over TCP) takes a lock that its receive thread
    holds while it waits for data from a peer that is still alive, such as the node of the same
    launch file. `meco replay-eval` then hung after writing its report, every thread blocked
    and the GIL held (a `make test` run; 2 of 111 runs of a stress loop; py-spy: the main thread
    in `TCPChannelResourceBasic::disconnect` -> `pthread_mutex_lock`). Nothing is lost by
    skipping that teardown: the kernel closes the sockets, peers drop the participant, and its
    shared-memory segment, the one thing its destructor frees that outlives the process, is
    unlinked here."""
    from meco_ros.dds_shm import remove_own_segments

    try:
        remove_own_segments()
    except OSError:  # /dev/shm or /proc unreadable: the node's janitor will find the segment later
        pass
    exit_without_finalization(code)

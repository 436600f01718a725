"""A last-resort bound on a replay that stops making progress.

Why: every wait of the evaluator has a timeout, yet once (a local test run, session 11) a
replay sat with every thread in a futex wait after the node had been found: a lock or a
DDS call that blocked with the GIL held, which no Python thread (and no timeout) can
interrupt. faulthandler's watchdog is a C thread that needs no GIL: when nothing has been
sent for `seconds` it writes every thread's traceback to stderr (the diagnosis) and ends
the process with exit code 1, instead of hanging a launch or a CI job forever.
"""
from __future__ import annotations

import faulthandler
import signal
import sys
import time
from typing import Any

from meco_ros.replay.config import ReplayConfig

MAX_CONSECUTIVE_TIMEOUTS = 3  # frames in a row without outputs before a replay aborts itself
LINK_TEARDOWN_S = 30.0  # the replay's own DDS participant normally goes in well under a second


def stall_seconds(cfg: ReplayConfig) -> float:
    """Longer than any stretch the evaluator itself may legitimately go without sending:
    a probe (max(timeout, 10) s) or three frames in a row that each waited --timeout."""
    return (MAX_CONSECUTIVE_TIMEOUTS + 2) * max(cfg.timeout, 10.0) + 60.0


class StallGuard:
    """`with StallGuard(s):` arms the watchdog; `beat()` (each frame sent) re-arms it."""

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self._stream = sys.__stderr__
        self.armed = False
        self._armed_at = -float("inf")

    def beat(self) -> None:
        """Re-arm, at most every tenth of the bound: each re-arm replaces faulthandler's
        watchdog thread, which at 30 frames/s is work the replay need not do."""
        now = time.monotonic()
        if self.armed and now - self._armed_at >= self.seconds / 10:
            self._armed_at = now
            faulthandler.dump_traceback_later(self.seconds, exit=True, file=self._stream)

    def __enter__(self) -> "StallGuard":
        try:
            self._stream.fileno()
        except (AttributeError, OSError, ValueError):  # no real stderr: nothing to write to, no guard
            return self
        self.armed = True
        self._armed_at = -float("inf")
        self.beat()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.armed:
            faulthandler.cancel_dump_traceback_later()
        self.armed = False


def dump_stacks_on_sigusr1() -> bool:
    """`kill -USR1 <pid>` writes every thread's stack to stderr and the replay goes on. A stall
    short of the guard's bound (or a test that gives up first, session 16) can be diagnosed
    from outside: faulthandler's handler is C and needs no GIL, so it answers even when a
    blocked call holds it. False where the platform has no SIGUSR1 or there is no stderr."""
    if not hasattr(signal, "SIGUSR1"):
        return False
    try:
        faulthandler.register(signal.SIGUSR1, file=sys.__stderr__, all_threads=True)
    except (AttributeError, OSError, ValueError, RuntimeError):
        return False
    return True

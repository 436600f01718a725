"""One-slot mailboxes and the threads that drain them.

Why: the executor thread must stay free for callbacks (images, camera info, parameter
services, timers), and a slow model must never build a queue. The subscription callback
`put`s each frame into a single slot, replacing (and reporting) any frame still waiting;
the inference thread always takes the newest. Latency is then bounded by one inference,
however slow the model and however fast the camera.

The node runs two stages: inference (one thread, or several taking frames from the same
mailbox when they run in parallel: `params.resolve_workers`), then post-processing +
publishing of each frame while the next one is inferred (a GPU or a second core does not sit idle while messages
are built). Between them `put_wait` hands over each result without dropping it and
waits while the previous one is still being published: at most one result is ever
pending, so no backlog forms there either. The publish stage runs reniced
(defaults.PUBLISH_THREAD_NICE): on a small CPU, inference keeps the cores it needs.
"""
from __future__ import annotations

import ctypes
import os
import threading
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Mailbox(Generic[T]):
    """Holds at most one item; `put` returns the item it replaced (a dropped frame) or None.

    `on_hungry` is called, under the (re-entrant) lock, when a `get` is about to wait on an
    empty slot: the node takes a camera frame for it then and may `put` it from there
    (`intake.py`); `hungry` says a getter waits on an empty slot."""

    def __init__(self, on_hungry: Callable[[], None] | None = None) -> None:
        self._cond = threading.Condition()
        self._item: T | None = None
        self._closed = False
        self._waiting = 0
        self._on_hungry = on_hungry

    @property
    def hungry(self) -> bool:
        return self._waiting > 0 and self._item is None and not self._closed

    def put(self, item: T) -> T | None:
        with self._cond:
            old, self._item = self._item, item
            self._cond.notify_all()
            return old

    def put_wait(self, item: T, timeout: float | None = None) -> bool:
        """Put once the slot is empty (nothing is replaced); False on timeout or close."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._item is None or self._closed, timeout) or self._closed:
                return False
            self._item = item
            self._cond.notify_all()
            return True

    def get(self, timeout: float | None = None) -> T | None:
        """The newest item, waiting up to `timeout`; None on timeout or once closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._waiting += 1
                try:
                    if self._on_hungry is not None:
                        self._on_hungry()
                    self._cond.wait_for(lambda: self._item is not None or self._closed, timeout)
                finally:
                    self._waiting -= 1
            if self._item is None or self._closed:
                return None
            item, self._item = self._item, None
            self._cond.notify_all()  # wakes a put_wait
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed


def renice_current_thread(nice: int) -> bool:
    """Add `nice` to the calling thread's niceness (Linux: per thread); False where not possible."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + int(nice)))
        return True
    except (AttributeError, OSError):  # no per-thread priorities on this platform
        return False


def name_native_thread(name: str) -> bool:
    """Give the calling thread its OS name (Linux prctl PR_SET_NAME, 15 characters), so that
    top -H, /proc/<pid>/task/*/comm and profilers tell the node's threads apart (Python 3.11
    names only its own Thread objects). False where not possible."""
    try:
        libc = ctypes.CDLL(None)
        return libc.prctl(15, name.encode()[:15], 0, 0, 0) == 0  # PR_SET_NAME
    except (OSError, AttributeError):
        return False


class Stage(threading.Thread):
    """Daemon thread: take the newest item, `process` it, repeat until the mailbox closes.

    `process` must handle its own errors; anything escaping it goes to `on_error` and the
    loop carries on (one bad frame must not end perception). `init` runs first, on this
    thread: per-thread state such as torch's OpenMP thread count and thread pool belongs
    to the thread that runs inference, so that is where threads are set and warm-up runs.
    `ready` is set when init has finished (`init_error` holds its exception, if any).
    `nice` > 0 lowers this thread's CPU priority (Linux; ignored where threads cannot be
    reniced), so that a stage yields the cores to a more urgent one.
    """

    def __init__(self, mailbox: Mailbox[T], process: Callable[[T], None],
                 on_error: Callable[[BaseException], None], name: str = "meco-stage",
                 init: Callable[[], None] | None = None, nice: int = 0) -> None:
        super().__init__(name=name, daemon=True)
        self.mailbox, self.process, self.on_error, self.init = mailbox, process, on_error, init
        self.nice = nice
        self.ready = threading.Event()
        self.init_error: BaseException | None = None

    def run(self) -> None:
        name_native_thread(self.name)
        if self.nice:
            renice_current_thread(self.nice)
        if self.init is not None:
            try:
                self.init()
            except Exception as exc:  # noqa: BLE001 - reported through init_error
                self.init_error = exc
                self.ready.set()
                return
        self.ready.set()
        while not self.mailbox.closed:
            item = self.mailbox.get(timeout=0.5)
            if item is None:
                continue
            try:
                self.process(item)
            except Exception as exc:  # noqa: BLE001 - keep the loop alive, report upstream
                self.on_error(exc)

    def stop(self, timeout: float = 10.0) -> bool:
        """Close the mailbox and wait for the item in progress; True if the thread ended."""
        self.mailbox.close()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout)
        return not self.is_alive()

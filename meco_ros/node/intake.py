"""Camera messages -> validated frames in the inference mailbox, counted, and taken from DDS
only when an inference worker is free to use one (`FrameIntake`).

Why: with a camera faster than the model most frames are dropped. Taking every one of
them into Python first (an executor wake-up, deserialising 0.9 MB, a callback) only to
replace it in the mailbox cost ~0.1 core at 60 Hz 640x480, on a 2-core machine whose
cores are otherwise spent on inference. With the input QoS at KEEP_LAST 1, DDS already
keeps nothing but the newest frame. A worker that finds the mailbox empty takes that
frame itself (`take_newest`, on its own thread: the executor's wake-ups cost more than
the take); when none has come yet, `DemandGate` lets the executor take the next one as it
arrives. Frames DDS replaced meanwhile never reach Python. They are still counted,
received and dropped, from the publisher's sequence numbers (`SequenceGaps`).
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Callable

from rclpy.callback_groups import CallbackGroup
from rclpy.exceptions import InvalidHandle

from .frames import Frame, InvalidFrame, check_raw
from .monitoring import PipelineStats
from .worker import Mailbox

#: publishers remembered for sequence gaps (a restarted camera is a new publisher)
MAX_PUBLISHERS = 8
#: a larger jump is not counted as drops (a reordered or reset publisher)
MAX_GAP = 100_000
#: how far behind the newest a frame may still arrive late (two threads take frames)
LATE_WINDOW = 64


class DemandGate(CallbackGroup):
    """Callback group whose subscriptions the executor waits on only while `is_open()` is true.

    The executor leaves an entity out of its wait set while its group cannot execute
    (rclpy `Executor.can_execute`); whoever makes `is_open` true must wake the executor
    (a guard condition), which `Mailbox(on_hungry=...)` does when a worker starts waiting."""

    def __init__(self, is_open: Callable[[], bool]) -> None:
        super().__init__()
        self._is_open = is_open

    def can_execute(self, entity: Any) -> bool:
        return self._is_open()

    def beginning_execution(self, entity: Any) -> bool:
        return True  # callbacks of the group may run at once (a frame and camera info)

    def ending_execution(self, entity: Any) -> None:
        pass


class SequenceGaps:
    """Frames a publisher sent that this reader never took, from MessageInfo's publication
    sequence numbers (per publisher: a restarted camera is a new publisher, starting at 1).

    Two threads take frames (an idle worker, or the executor when none was there), so one
    may count its frame after the other counted a newer one: the older frame was then
    presumed missed, and arriving late it undoes that (`account` returns (0, -1)).
    Middleware that reports no sequence numbers gives (1, 0) for every frame."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._publishers: OrderedDict[bytes, _Publisher] = OrderedDict()

    def account(self, info: dict[str, Any] | None) -> tuple[int, int]:
        """(received, dropped) to add to the counters for this frame and any it revealed missed."""
        seq = (info or {}).get("publication_sequence_number")
        gid = ((info or {}).get("publisher_gid") or {}).get("data")
        if not isinstance(seq, int) or gid is None:
            return 1, 0
        key = bytes(gid)
        with self._lock:
            pub = self._publishers.get(key)
            if pub is None:  # a new publisher: the least recently heard one goes past MAX_PUBLISHERS
                pub = self._publishers[key] = _Publisher(seq - 1)
                if len(self._publishers) > MAX_PUBLISHERS:
                    self._publishers.popitem(last=False)
            else:
                self._publishers.move_to_end(key)
            return pub.account(seq)


class _Publisher:
    """The newest sequence number seen, and the recent ones before it presumed missed."""

    def __init__(self, high: int) -> None:
        self.high = high
        self.presumed: set[int] = set()

    def account(self, seq: int) -> tuple[int, int]:
        if seq in self.presumed:  # counted missed, taken after a newer one after all
            self.presumed.discard(seq)
            return 0, -1
        gap = seq - self.high - 1
        if gap < 0:  # a duplicate: this frame only
            return 1, 0
        if gap > MAX_GAP:  # a jump no drops explain (a reset): count from here
            self.high, self.presumed = seq, set()
            return 1, 0
        self.presumed.update(range(max(self.high + 1, seq - LATE_WINDOW), seq))
        self.high = seq
        if len(self.presumed) > LATE_WINDOW:  # forget those too old to arrive late (seldom: no rebuild per frame)
            self.presumed = {s for s in self.presumed if s > seq - LATE_WINDOW}
        return 1 + gap, gap


def arrival_monotonic(info: dict[str, Any] | None) -> float:
    """When DDS received the message, on time.monotonic()'s clock (now where unknown): a
    frame that waited in DDS for a free worker is as old as its arrival, not its take."""
    now = time.monotonic()
    stamp = (info or {}).get("received_timestamp")
    if not isinstance(stamp, int) or stamp <= 0:
        return now
    waited = (time.time_ns() - stamp) / 1e9
    return now - waited if 0.0 <= waited < 10.0 else now


def take_newest(subscriptions: list[Any]) -> bool:
    """Take what each subscription holds and hand it to its callback, here on this thread
    (as rclpy's executors do: `Subscription.handle.take_message`); True if a message was
    taken. A subscription destroyed meanwhile (deactivation) is skipped."""
    taken = False
    for sub in subscriptions:
        try:
            with sub.handle:
                got = sub.handle.take_message(sub.msg_type, sub.raw)
        except InvalidHandle:
            continue
        if got is not None:
            sub.callback(*got)
            taken = True
    return taken


class FrameIntake:
    """The node's input stage: image callbacks (the executor's, or an idle worker's through
    `want_frame`) validate each frame zero-copy, count it and put it in `mailbox`, whose
    `get` the inference workers call. The node creates the subscriptions (`gate()` as their
    callback group, `on_image` / `on_compressed` as callbacks) and lists the gated ones in
    `subscriptions`."""

    def __init__(self, stats: PipelineStats, min_image_size: Callable[[], int],
                 on_invalid: Callable[[InvalidFrame], None], wake_executor: Callable[[], None],
                 log_error: Callable[[str], None]) -> None:
        self.stats, self._min_image_size, self._on_invalid = stats, min_image_size, on_invalid
        self._wake_executor, self._log_error = wake_executor, log_error
        self.mailbox: Mailbox[Frame] = Mailbox(on_hungry=self.want_frame)
        self.subscriptions: list[Any] = []  # image subscriptions an idle worker takes frames from
        self._sequence = SequenceGaps()

    def gate(self) -> DemandGate:
        """The callback group of KEEP_LAST 1 image subscriptions: open while a worker waits."""
        return DemandGate(lambda: self.mailbox.hungry)

    def on_image(self, msg: Any, info: dict[str, Any]) -> None:
        self._count(info)
        try:
            view = check_raw(msg, self._min_image_size())
        except InvalidFrame as exc:
            self._on_invalid(exc)
            return
        self._put(Frame(msg, False, view, arrival_monotonic(info)))

    def on_compressed(self, msg: Any, info: dict[str, Any]) -> None:
        self._count(info)
        if len(msg.data) == 0:
            self._on_invalid(InvalidFrame("compressed", f"compressed image ({msg.format!r}) has no data"))
            return
        self._put(Frame(msg, True, received=arrival_monotonic(info)))

    def want_frame(self) -> None:
        """A worker waits on the empty mailbox (its `on_hungry`): it takes the frame DDS holds, on
        its own thread; if none has come (or it was invalid), the executor takes the next one."""
        try:
            while self.subscriptions and self.mailbox.hungry and take_newest(self.subscriptions):
                pass
        except Exception as exc:  # noqa: BLE001 - must not end the worker: the executor takes frames instead
            self.subscriptions = []
            self._log_error(f"taking a frame on the inference thread failed ({exc!r}); "
                            "the executor takes them from now on")
        if self.mailbox.hungry:
            self._wake_executor()

    def _count(self, info: dict[str, Any]) -> None:
        """This frame, and those DDS replaced since the last one taken (received, then dropped)."""
        received, dropped = self._sequence.account(info)
        if received:
            self.stats.count("received", received)
        if dropped:
            self.stats.count("dropped", dropped)

    def _put(self, frame: Frame) -> None:
        if self.mailbox.put(frame) is not None:
            self.stats.count("dropped")  # a frame still waiting was replaced

"""Playing a bag's frames to the perception node and matching its outputs back: the closed loop
(one frame in flight, every frame scored) and real time (a fixed rate or the bag's own timing,
the node drops what it cannot keep up with), the read-ahead that feeds real time, and the probe
frame that proves discovery first. `meco_ros.replay.evaluator` runs these; `link` carries the
messages and `report.Scorer` scores each frame.
"""
from __future__ import annotations

import math
import queue
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from meco_core.bags import stamp_ns
from meco_core.bags.replay_source import ReplayFrame
from meco_core.evaluation.bench import percentiles

from meco_ros.proc import Process
from .config import ReplayConfig
from .errors import ReplayAbort, say
from .report import Scorer
from .stall_guard import MAX_CONSECUTIVE_TIMEOUTS

PROBE_STAMP_NS = 1  # no recorded frame is stamped 1 ns after the epoch


@dataclass
class Progress:
    """Counters of one replay (this process's view)."""

    sent: int = 0
    completed: int = 0  # frames whose depth and segmentation both came back
    scored: int = 0
    no_gt: int = 0  # outputs came back, but the frame has no ground truth
    timeouts: int = 0
    resent: int = 0  # closed loop: frames sent again after resend_s without outputs (best effort lost them)
    late_sends: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    receipts: list[float] = field(default_factory=list)

    def fps(self) -> float:
        r = self.receipts
        return (len(r) - 1) / (r[-1] - r[0]) if len(r) >= 2 and r[-1] > r[0] else math.nan


# ---------------------------------------------------------------- replay loops
class Replayer:
    """Sends frames, matches outputs back by stamp, scores them."""

    def __init__(self, cfg: ReplayConfig, link: Any, node: Process | None, progress: Progress) -> None:
        self.cfg, self.link, self.node, self.p = cfg, link, node, progress
        self.scorer: Scorer | None = None
        self.problems: list[str] = []
        self.resend_s = 2.0  # closed loop: set from the probe's round trip (5 x, at least 2 s)
        self.beat: Callable[[], None] = lambda: None  # called on every send (the stall guard's)

    def _node_gone(self) -> bool:
        return self.node is not None and not self.node.alive()

    def _check_node(self) -> None:
        if self._node_gone():
            code = self.node.popen.returncode
            how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            tail = "\n".join(self.node.lines[-15:])
            # The first line is what the report must say (issue 20): the node died, how, and how
            # many frames were scored before it did; its last output follows for the why.
            raise ReplayAbort(f"perception_node died during the replay ({how}) after {self.p.scored} frame(s) "
                              f"were scored ({self.p.sent} sent): partial report. Its last output:\n{tail}")

    @staticmethod
    def _override(frame: ReplayFrame) -> int | None:
        """Unstamped images go out stamped with their bag time, so outputs can be matched."""
        try:
            return None if stamp_ns(frame.image) == frame.stamp else frame.stamp
        except AttributeError:
            return frame.stamp

    def _send(self, frame: ReplayFrame) -> float:
        t = self.link.publish(frame.image, frame.info, self._override(frame))
        self.p.sent += 1
        self.beat()
        return t

    def _handle(self, frame: ReplayFrame, out: Any, t_send: float) -> None:
        assert self.scorer is not None
        latency = (out.received - t_send) * 1e3
        self.p.completed += 1
        self.p.latencies_ms.append(latency)
        self.p.receipts.append(out.received)
        if frame.gt.empty:
            self.p.no_gt += 1
            return
        m = self.scorer.score(frame.index, frame.stamp, frame.image, out.depth, out.labels, frame.gt.depth,
                              frame.gt.labels, latency)
        if m is None:
            self.p.no_gt += 1
        else:
            self.p.scored += 1

    # -- closed loop: one frame in flight
    def closed_loop(self, frames: Iterable[ReplayFrame]) -> None:
        consecutive = 0
        for frame in frames:
            self._check_node()
            t = self._send_until_answered(frame)
            key = frame.stamp
            if (out := self.link.output(key)) is not None and out.complete():
                consecutive = 0
                self._handle(frame, self.link.pop(key), t)
                continue
            self._check_node()  # woken by the node's death, not by its outputs
            self.p.timeouts += 1
            say(self._timeout_report(frame))
            consecutive += 1
            self.link.pop(key)
            if consecutive >= MAX_CONSECUTIVE_TIMEOUTS:
                self._check_node()
                raise ReplayAbort(f"no outputs for {consecutive} frames in a row (each waited {self.cfg.timeout:g} s, "
                                  f"--timeout): the node stopped answering")

    def _send_until_answered(self, frame: ReplayFrame) -> float:
        """Send a frame and wait for its outputs up to --timeout, sending it again (same stamp)
        every `resend_s`: frames and outputs travel best effort, and one lost under load must
        cost a resend, not a whole --timeout (three in a row aborted a replay: the old flake).
        The wait also ends when the node dies or this process's receive thread stops, so
        neither is blamed on the other after 3 x --timeout. Returns the last send's time."""
        key = frame.stamp

        def answered() -> bool:
            out = self.link.data.outputs.get(key)
            return (out is not None and out.complete()) or self._node_gone() or not self.link.receiving

        deadline = time.monotonic() + self.cfg.timeout
        t = self._send(frame)
        while not self.link.wait(answered, min(self.resend_s, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                break
            t = self.link.publish(frame.image, frame.info, self._override(frame))
            self.p.resent += 1
        return t

    def _timeout_report(self, frame: ReplayFrame) -> str:
        """One line saying what each side did while a frame went unanswered: which outputs came,
        whether this process still receives, and the node's own counters (from its stats)."""
        out = self.link.output(frame.stamp)
        got = "none" if out is None else ", ".join(k for k in ("depth", "labels") if getattr(out, k) is not None)
        stats = self.link.data.stats[-1] if self.link.data.stats else None
        node = "no stats received" if stats is None else (
            f"node stats {time.monotonic() - self.link.last_stats_at:.1f} s old: received {stats.frames_received}, "
            f"processed {stats.frames_processed}, dropped {stats.frames_dropped}, invalid {stats.frames_invalid}, "
            f"errors {stats.inference_errors}")
        thread = "receiving" if self.link.receiving else f"receive thread STOPPED ({self.link.side.error})"
        return (f"replay-eval: frame {frame.index} (stamp {frame.stamp}) sent every {self.resend_s:g} s for "
                f"--timeout {self.cfg.timeout:g} s: no complete outputs (got: {got or 'none'}); {thread}; {node}")

    # -- real time: frames at a fixed rate, the node keeps up or drops
    def real_time(self, frames: Iterable[ReplayFrame]) -> None:
        pending: dict[int, tuple[ReplayFrame, float]] = {}
        seen = len(self.link.data.order)
        period = 1.0 / float(self.cfg.rate) if self.cfg.rate != "bag" else None
        t0 = time.monotonic()
        first_stamp: int | None = None

        def collect() -> None:
            nonlocal seen
            for key in self.link.completed_since(seen):
                seen += 1
                out = self.link.pop(key)
                if key not in pending or out is None:
                    continue
                frame, t_send = pending.pop(key)
                for k in [k for k, (_, ts) in pending.items() if ts < t_send]:
                    del pending[k]  # sent earlier, never processed: superseded in the node
                self._handle(frame, out, t_send)
            stale = time.monotonic() - self.cfg.timeout
            for k in [k for k, (_, ts) in pending.items() if ts < stale]:
                del pending[k]

        for i, frame in enumerate(frames):
            self._check_node()
            if first_stamp is None:
                first_stamp = frame.stamp
            target = t0 + (i * period if period else (frame.stamp - first_stamp) / 1e9)
            while (left := target - time.monotonic()) > 0:
                n = seen
                self.link.wait(lambda n=n: len(self.link.data.order) > n, left)
                collect()
            if period and left < -period:
                self.p.late_sends += 1
            pending[frame.stamp] = (frame, self._send(frame))
            collect()
        # drain: the last frames' outputs, until nothing more comes
        quiet = min(self.cfg.timeout, max(2.0, 3e-3 * percentiles(self.p.latencies_ms)["p95"]
                                          if self.p.latencies_ms else 5.0))
        while pending:
            n = seen
            if not self.link.wait(lambda n=n: len(self.link.data.order) > n or self._node_gone(), quiet):
                break
            self._check_node()
            collect()
        self._check_node()  # a node that died during the last frames is a partial replay, not a clean one


class Prefetch:
    """Read frames ahead on a thread (bounded queue), so bag decoding and lidar projection do not
    delay real-time sends. `close()` stops the reader; errors are re-raised to the consumer."""

    _END = object()

    def __init__(self, frames: Iterable[ReplayFrame], size: int = 8) -> None:
        self._q: queue.Queue = queue.Queue(size)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, args=(iter(frames),), name="meco-replay-read", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, frames: Any) -> None:
        try:
            for frame in frames:
                if not self._put(frame):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._error = exc
        finally:
            self._put(self._END)

    def __iter__(self):
        while True:
            item = self._q.get()
            if item is self._END:
                break
            yield item
        if self._error is not None:
            raise self._error

    def close(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


# ---------------------------------------------------------------- probe and metadata
def probe(link: Any, frame: ReplayFrame, timeout: float) -> float:
    """Send the first frame (stamped PROBE_STAMP_NS) until its outputs and a Prediction came back;
    returns the round trip in seconds. Raises ReplayAbort on timeout."""
    deadline = time.monotonic() + timeout
    sent = 0
    t_first = 0.0
    while time.monotonic() < deadline:
        t = link.publish(frame.image, frame.info, PROBE_STAMP_NS)
        t_first = t_first or t
        sent += 1
        ok = link.wait(lambda: (o := link.data.outputs.get(PROBE_STAMP_NS)) is not None and o.complete()
                       and link.data.meta is not None, min(2.0, max(0.0, deadline - time.monotonic())))
        if ok:
            out = link.pop(PROBE_STAMP_NS)
            rtt = out.received - t
            if sent > 1:  # earlier probes may still be in the node: let them pass
                link.wait(lambda: False, min(2 * max(rtt, 0.2), 5.0))
                link.pop(PROBE_STAMP_NS)
            return rtt
        out = link.output(PROBE_STAMP_NS)
        if out is not None and out.complete() and link.data.meta is None and time.monotonic() - t_first > 5:
            break  # outputs but no Prediction (outputs.prediction off?)
    got = link.output(PROBE_STAMP_NS)
    if got is not None and got.complete():
        link.pop(PROBE_STAMP_NS)
        return math.nan
    raise ReplayAbort(f"the node did not answer a probe frame within {timeout:g} s (sent {sent}; "
                      f"image topic {link.image_topic})")

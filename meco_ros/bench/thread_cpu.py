"""CPU by thread of running processes (Linux /proc): where a node's cores go.

Why: node-bench's stage times are wall time on threads that share the cores, so a stage that
waits for a core looks as slow as one that computes. CPU time per thread (user + system,
`/proc/<pid>/task/<tid>/stat`) says which thread spends them. Threads are told apart by their
OS names (the node names its own: meco-infer-N, meco-publish; its main thread runs the
executor); Fast DDS's numbered threads are summed per kind (dds.shm.123 -> dds.shm).
"""
from __future__ import annotations

import os
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_NUMBERED = re.compile(r"\.\d+$")


def _ticks(stat_line: str) -> int:
    """utime + stime of a /proc stat line (fields 14 and 15; the name may hold spaces)."""
    fields = stat_line.rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def thread_cpu_seconds(pid: int) -> Counter[str]:
    """CPU seconds so far of each live thread of `pid`, summed by thread name; the main thread
    is "main". Empty if the process is gone."""
    out: Counter[str] = Counter()
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        task = Path(f"/proc/{pid}/task/{tid}")
        try:
            name = "main" if int(tid) == pid else _NUMBERED.sub("", task.joinpath("comm").read_text().strip())
            out[name] += _ticks(task.joinpath("stat").read_text()) / _TICK
        except (OSError, ValueError, IndexError):
            continue  # the thread ended between the listing and the read
    return out


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds so far of the whole process (ended threads included); 0 if it is gone."""
    try:
        return _ticks(Path(f"/proc/{pid}/stat").read_text()) / _TICK
    except (OSError, ValueError, IndexError):
        return 0.0


def cpu_cores(node_pid: int, others: dict[str, int], seconds: float) -> dict[str, Any]:
    """Cores used over the next `seconds`: the node's threads by name, the node in total, and
    each of `others` ({label: pid}) in total."""
    before, totals = thread_cpu_seconds(node_pid), {k: process_cpu_seconds(p) for k, p in others.items()}
    node_before = process_cpu_seconds(node_pid)
    t0 = time.monotonic()
    time.sleep(seconds)
    after = thread_cpu_seconds(node_pid)
    span = max(time.monotonic() - t0, 1e-6)
    threads = {name: round(max(after[name] - before.get(name, 0.0), 0.0) / span, 3) for name in after}
    return {
        "window_s": round(span, 2),
        "node_threads": dict(sorted(threads.items(), key=lambda kv: -kv[1])),
        "node": round((process_cpu_seconds(node_pid) - node_before) / span, 3),
        **{label: round((process_cpu_seconds(pid) - totals[label]) / span, 3) for label, pid in others.items()},
    }


def describe(cpu: dict[str, Any], min_cores: float = 0.005) -> str:
    """One line: the node's busiest threads (main thread named as the executor's), then the rest."""
    names = {"main": "executor (main)"}
    shown = [f"{names.get(n, n)} {c:.2f}" for n, c in cpu["node_threads"].items() if c >= min_cores]
    rest = [f"{k} {v:.2f}" for k, v in cpu.items() if k not in ("window_s", "node_threads", "node")]
    return f"node {cpu['node']:.2f}: " + ", ".join(shown or ["-"]) + ("; " + ", ".join(rest) if rest else "")

"""Run the perception node (or any ROS process) as a subprocess: for tests and node-bench.

Why a helper: both need the same things done carefully: the installed `perception_node`
executable (what the vehicle runs), output read continuously on a thread (a full pipe
would stall the node), waits that always time out, and a stop by signal that reports the
exit code.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Sequence

REPO = Path(__file__).resolve().parents[1]


def ros_env(domain_id: int | None = None, **extra: str) -> dict[str, str]:
    """os.environ plus loopback discovery, the large-image Fast DDS profile, Fast DDS itself."""
    env = dict(os.environ)
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO / "config" / "fastdds_profile.xml"))
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env.setdefault("PYTHONUNBUFFERED", "1")
    if domain_id is not None:
        env["ROS_DOMAIN_ID"] = str(domain_id)
    env.update(extra)
    return env


def node_command() -> list[str]:
    """The perception_node console script next to this Python, else `python -m`."""
    exe = Path(sys.executable).parent / "perception_node"
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("perception_node")
    return [found] if found else [sys.executable, "-m", "meco_ros.node.perception_node"]


class Process:
    """A subprocess whose stdout (with stderr, unless `stderr` names a file for it) is collected
    line by line; `stdin=True` keeps a pipe open for `send`."""

    def __init__(self, cmd: Sequence[str], env: dict[str, str] | None = None, cwd: str | Path | None = None,
                 echo: bool = False, stdin: bool = False, stderr: Path | None = None) -> None:
        self.cmd = list(cmd)
        self.lines: list[str] = []
        self._echo = echo
        self._cond = threading.Condition()
        err = open(stderr, "w") if stderr is not None else None  # noqa: SIM115 - handed to the child
        try:
            self.popen = subprocess.Popen(self.cmd, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                          stderr=err if err is not None else subprocess.STDOUT, text=True, bufsize=1,
                                          stdin=subprocess.PIPE if stdin else None)
        finally:
            if err is not None:
                err.close()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
            if self._echo:
                print(line, end="", file=sys.stderr)
        with self._cond:
            self._cond.notify_all()  # waiters see the end at once

    def send(self, text: str) -> None:
        """One line to the process's stdin (started with stdin=True)."""
        assert self.popen.stdin is not None, "started without stdin=True"
        self.popen.stdin.write(text + "\n")
        self.popen.stdin.flush()

    @property
    def output(self) -> str:
        """Every line printed so far; once the process has exited, all of them (its reader
        gets up to 2 s to drain the pipe: the exit can be seen before the last lines are read)."""
        if self.popen.poll() is not None and self._reader.is_alive():
            self._reader.join(timeout=2.0)
        with self._cond:
            return "\n".join(self.lines)

    def wait_for(self, text: str, timeout: float) -> bool:
        """True once a line containing `text` was printed; False on timeout or exit."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if any(text in line for line in self.lines):
                    return True
                left = deadline - time.monotonic()
                if left <= 0 or (self.popen.poll() is not None and not self._reader.is_alive()):
                    return False
                self._cond.wait(min(left, 0.2))

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGINT, timeout: float = 20.0) -> int | None:
        """Send `sig`, wait up to `timeout` for exit; kill if it hangs (returns None then)."""
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
                self._reader.join(2)
                return None
        self._reader.join(2)
        return self.popen.returncode


def start_node(ros_args: Sequence[str], env: dict[str, str], echo: bool = False) -> Process:
    """perception_node --ros-args <ros_args>, run from the repository root."""
    return Process([*node_command(), "--ros-args", *ros_args], env=env, cwd=REPO, echo=echo)


def node_checkpoint(checkpoint: str | None, dev: bool = False) -> Path | None:
    """The checkpoint a tool's node runs: the one asked for (an error if it does not exist),
    else the shipped default if present, else None (the random-weight test/dev model)."""
    from meco_core.defaults import DEFAULT_CHECKPOINT

    from .package_paths import find_package_checkpoint

    if dev:
        return None
    if checkpoint:
        found = find_package_checkpoint(checkpoint)
        if found is None:
            raise FileNotFoundError(f"checkpoint not found: {checkpoint} (train one with `meco train`, or pass "
                                    "--dev for a random-weight test model)")
        return found
    return find_package_checkpoint(DEFAULT_CHECKPOINT)


def node_ros_args(params_file: str | Path, namespace: str, checkpoint: str | Path | None, dev_model_config: str,
                  **overrides: object) -> list[str]:
    """perception_node --ros-args: the params file, the namespace, the model (a checkpoint, or
    the random-weight test/dev model), then only the overrides given (None = leave the file's)."""
    args = ["--params-file", str(params_file), "-r", f"__ns:={namespace}"]
    if checkpoint:
        args += ["-p", f"checkpoint:={checkpoint}"]
    else:
        args += ["-p", "checkpoint:=''", "-p", "model:=meco", "-p", f"model_config:={dev_model_config}"]
    return args + param_args(overrides)


def param_args(values: dict[str, object]) -> list[str]:
    """`-p key:=value` for each value that is not None, written as rcl parses it (true/false,
    [a,b])."""
    args: list[str] = []
    for key, value in values.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else \
            f"[{','.join(str(v) for v in value)}]" if isinstance(value, (list, tuple)) else str(value)
        args += ["-p", f"{key}:={text}"]
    return args

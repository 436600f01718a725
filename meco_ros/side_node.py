"""A node of its own beside the code that uses it: own rclpy context, executor on a thread.

Why one helper: the node benchmark's viewer, the replay evaluator's link to the node and
the tests all need the same thing done the same careful way: a context that is not the
global one (so several can live in one process, each on its own domain), a node, an
executor spinning on a daemon thread, and a stop that shuts the executor down before the
node and the context go, whatever state the context is in by then.

    with SideNode("meco_viewer", namespace="/camera") as side:
        side.node.create_subscription(Image, "depth", on_depth, 10)
        ...
"""
from __future__ import annotations

import threading
from typing import Any


class SideNode:
    """An rclpy node in a context of its own, spun on a daemon thread until `stop`."""

    def __init__(self, name: str, namespace: str = "", domain_id: int | None = None) -> None:
        self.name, self.namespace, self.domain_id = name, namespace, domain_id
        self.ctx: Any = None
        self.node: Any = None
        self.executor: Any = None
        self._thread: threading.Thread | None = None
        self.error: str | None = None  # why spinning stopped, if it stopped on an error

    def start(self) -> "SideNode":
        """Create the context and the node, then start spinning (subscriptions may be added later)."""
        return self.open().spin()

    def open(self) -> "SideNode":
        """Create the context, the node and its executor, not spinning yet (for entities that
        must exist before the first callback can run)."""
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor

        self.ctx = Context()
        rclpy.init(context=self.ctx, domain_id=self.domain_id)
        self.node = rclpy.create_node(self.name, namespace=self.namespace, context=self.ctx)
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)
        return self

    def spin(self) -> "SideNode":
        """Spin the executor on a daemon thread until `stop`."""
        self._thread = threading.Thread(target=self._spin, name=f"{self.name}-spin", daemon=True)
        self._thread.start()
        return self

    def _spin(self) -> None:
        try:
            self.executor.spin()
        except Exception as exc:  # noqa: BLE001 - kept for the owner: a dead receive thread must be named
            if self.ctx is not None and self.ctx.ok():  # not the shutdown at the end
                self.error = f"{type(exc).__name__}: {exc}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 3.0) -> None:
        """Executor, spin thread, node, context, in that order; safe to call twice.

        Why this order: rclpy's `Executor.shutdown` only flags the executor (it does not wait
        for a spin in progress), and a node destroyed while the executor still holds its
        handle inside a wait is finalised later by the spin thread, DDS participant included,
        concurrently with the context's shutdown here. With the spin thread ended first, the
        node and its participant are destroyed here, one thing at a time. This does not cure
        Fast DDS 3.2.2's TCP teardown hang (a live peer can still block the participant's
        destructor: `process_guards.exit_without_dds_teardown`), it only keeps it out of a
        daemon thread."""
        if self.node is None:
            return
        import rclpy

        self.executor.shutdown(timeout_sec=timeout)  # flags the executor and wakes its wait
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():  # still inside a callback: destroy anyway, as before
                self.error = self.error or f"spin thread still running {timeout:g} s after shutdown"
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)
        self.node, self._thread = None, None

    def __enter__(self) -> "SideNode":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

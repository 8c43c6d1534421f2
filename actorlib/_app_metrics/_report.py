"""Reports of this process's metrics to its node: the first record after a report schedules
the next one on the runtime thread, at least ``period`` seconds after the previous one; one
more goes when the runtime stops (``shutdown()``) or the worker is stopped.

A report is the whole cumulative snapshot (``AppMetrics``), so the node just keeps the
latest: a report lost with a broken connection or sent twice changes nothing.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import trio

from ..exceptions import RuntimeShutdownError
from ._registry import Registry, current_registry, report_period

EXIT_FLUSH_WAIT = 0.2  # seconds a stopping worker waits for its last report to leave


def _runtime() -> Any:
    """This process's running runtime, or None (a driver before init() or after shutdown())."""
    module = sys.modules.get("actorlib._core._runtime")
    runtime = getattr(module, "_current", None) if module is not None else None
    return runtime if runtime is not None and not runtime.closed else None


def schedule(registry: Registry) -> None:
    """(Any thread.) Have a report sent soon, unless one is scheduled. Without a runtime (a
    driver before init() or after shutdown()) the values wait, and records stop asking:
    init() reports them (``report_to_new_runtime``)."""
    with registry.lock:
        if registry.scheduled:
            return
        registry.scheduled = True
    runtime = _runtime()
    if runtime is not None:
        try:
            runtime.soon(_start, registry, runtime)
        except (RuntimeShutdownError, trio.RunFinishedError):
            pass  # it stopped meanwhile: the values wait for the next init()


class Reporter:
    """Reports through one runtime (a driver that calls init() again gets a new one)."""

    def __init__(self, registry: Registry, runtime: Any) -> None:
        self.registry = registry
        self.runtime = runtime
        self.last = -float("inf")  # time.monotonic() of the last report
        try:
            self.period = report_period()  # as the environment says now (a driver may init() again)
        except ValueError:
            self.period = registry.period  # checked when the first metric was defined

    async def report_later(self) -> None:
        delay = self.last + self.period - time.monotonic()
        if delay > 0:
            await trio.sleep(delay)
        self.registry.scheduled = False  # before the snapshot: a record after it schedules another
        self.send()

    def send(self) -> None:
        self.last = time.monotonic()
        link = self.runtime.peers.local
        if link is None:
            return  # no node connection (a driver without a node, or one being replaced)
        try:
            link.send(self.registry.message())
        except trio.ClosedResourceError:
            pass  # its node is gone, or the link is being replaced: the next report carries it all

    async def last_report(self) -> None:
        """A teardown hook of the runtime: the final values, before its channels close."""
        if self.registry.reporter is self:
            self.registry.scheduled = False  # what was scheduled will not run: the runtime stops
            self.send()


def _start(registry: Registry, runtime: Any) -> None:
    """(Runtime thread.)"""
    reporter = registry.reporter
    if reporter is None or reporter.runtime is not runtime:
        registry.reporter = reporter = Reporter(registry, runtime)
        runtime.on_teardown.append(reporter.last_report)
    try:
        runtime.nursery.start_soon(reporter.report_later)
    except RuntimeError:  # the loop is stopping
        registry.scheduled = False


def report_to_new_runtime() -> None:
    """(A driver's init().) Report what was recorded before, through the new runtime."""
    registry = current_registry()
    if registry is not None:
        registry.scheduled = False  # whatever was scheduled belonged to a runtime that is gone
        schedule(registry)


def report_at_exit() -> None:
    """(Any thread; a worker that is being stopped, just before ``os._exit``.) Send the final
    values and give them up to EXIT_FLUSH_WAIT to leave. Does nothing without metrics."""
    registry = current_registry()
    runtime = _runtime()
    if registry is None or runtime is None or not registry.families:
        return
    link = runtime.peers.local
    if link is None or link.channel.closed:
        return
    try:
        link.channel.send_threadsafe(registry.message())
    except (trio.ClosedResourceError, trio.RunFinishedError):
        return  # the node or this runtime's loop is gone: what was reported before stays
    deadline = time.monotonic() + EXIT_FLUSH_WAIT
    while link.channel.queued and time.monotonic() < deadline:
        time.sleep(0.005)

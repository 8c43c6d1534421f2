"""The dashboard's plots' data: a small ring buffer of every node's numbers, sampled by the head.

Every ``PERIOD`` seconds the sampler asks the state API for ``stats`` (one cheap
query to each live node) and keeps the last ``LENGTH`` samples: CPU and memory
per node, and tasks finished and failed per second, from the nodes' counters.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable

import msgspec
import trio

import supervisors

from .._state import NodeStats, StatsResult

PERIOD = 2.0  # seconds between samples
LENGTH = 300  # samples kept: 10 minutes
log = logging.getLogger("actorlib.dashboard")


class Point(msgspec.Struct, array_like=True):
    """One node at one sample: [process CPU %, process RSS, machine CPU %, machine memory used,
    machine memory total, tasks finished/s, tasks failed/s]."""

    cpu: float
    rss: int
    machine_cpu: float
    memory_used: int
    memory_total: int
    finished_rate: float
    failed_rate: float


class History(msgspec.Struct, kw_only=True):
    """``GET /api/history``: sample times (wall clock) and, per node, one Point (or null) per time."""

    period: float
    times: list[float]
    nodes: dict[str, list[Point | None]]
    columns: list[str] = msgspec.field(default_factory=lambda: list(Point.__struct_fields__))


class StatsHistory:
    """The ring buffer, and the counters it turns into rates (a node whose counters went back,
    because it restarted, counts from zero again)."""

    def __init__(self, query: Callable[[], Awaitable[StatsResult]], period: float = PERIOD, length: int = LENGTH) -> None:
        self.query = query
        self.period = period
        self._samples: deque[tuple[float, dict[str, Point]]] = deque(maxlen=length)
        self._last: dict[str, tuple[float, int, int]] = {}  # node -> (time, finished, failed)

    def add(self, result: StatsResult, now: float | None = None) -> None:
        at = now if now is not None else max((n.time for n in result.nodes), default=0.0)
        points = {node.node_id: self._point(node) for node in result.nodes}
        self._samples.append((at, points))

    def _point(self, node: NodeStats) -> Point:
        finished_rate = failed_rate = 0.0
        last = self._last.get(node.node_id)
        if last is not None and node.time > last[0]:
            dt = node.time - last[0]
            finished = node.tasks_finished - last[1] if node.tasks_finished >= last[1] else node.tasks_finished
            failed = node.tasks_failed - last[2] if node.tasks_failed >= last[2] else node.tasks_failed
            finished_rate, failed_rate = round(finished / dt, 2), round(failed / dt, 2)
        self._last[node.node_id] = (node.time, node.tasks_finished, node.tasks_failed)
        return Point(
            cpu=node.process_cpu_percent, rss=node.process_rss, machine_cpu=node.cpu_percent,
            memory_used=node.memory_used, memory_total=node.memory_total, finished_rate=finished_rate,
            failed_rate=failed_rate,
        )  # fmt: skip

    def snapshot(self) -> History:
        samples = list(self._samples)
        nodes: dict[str, list[Point | None]] = {}
        for node_id in dict.fromkeys(n for _, points in samples for n in points):
            nodes[node_id] = [points.get(node_id) for _, points in samples]
        return History(period=self.period, times=[round(at, 3) for at, _ in samples], nodes=nodes)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sample every ``period`` seconds until cancelled (the head's ``dashboard`` child)."""
        task_status.started()
        while True:
            try:
                self.add(await self.query())
            except Exception as exc:  # a failed sample leaves a gap, never stops the sampler
                log.warning("dashboard: sampling the nodes failed: %s: %s", type(exc).__name__, exc)
            await trio.sleep(self.period)


def history_spec(history: StatsHistory) -> supervisors.ChildSpec:
    """The sampler as a permanent task child of the head's root supervisor."""
    return supervisors.ChildSpec(id="dashboard", start=lambda: supervisors.TaskChild(history.run))

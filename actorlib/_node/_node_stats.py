"""A node's running numbers for the dashboard's plots and ``/metrics`` (the state API's ``stats``).

Cheap enough to ask every couple of seconds: counters the node keeps anyway
(task history, pool, store), psutil's machine-wide CPU and memory, and one
``oneshot`` reading per process of this node's supervision tree.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

from .._state import LATENCY_BOUNDS, NodeStats


class NodeStatsReader:
    """Reads one NodeService's numbers; CPU percentages are since the previous reading."""

    def __init__(self, service: Any, process_stats: Any) -> None:
        self.service = service
        self.process_stats = process_stats  # the inspector's ProcessStats: one psutil.Process per pid
        psutil.cpu_percent(None)  # the first reading starts the machine's interval

    async def read(self, pids: set[int]) -> NodeStats:
        service = self.service
        samples = await self.process_stats.sample(pids | {os.getpid()})
        memory = psutil.virtual_memory()
        used, capacity, objects = service.store.stats() if service.store is not None else (0, 0, 0)
        history = service.tasks
        return NodeStats(
            node_id=service.node_id.hex(), time=time.time(), cpu_count=psutil.cpu_count() or 1,
            cpu_percent=psutil.cpu_percent(None), memory_used=memory.total - memory.available,
            memory_total=memory.total, process_cpu_percent=round(sum(s[0] or 0.0 for s in samples.values()), 1),
            process_rss=sum(s[1] or 0 for s in samples.values()), processes=len(samples),
            workers=self.workers(), tasks_running=history.running_count(), tasks_finished=history.finished_total,
            tasks_failed=history.failed_total, store_used=used, store_capacity=capacity, store_objects=objects,
            latency_bounds=list(LATENCY_BOUNDS), latency=history.latency.snapshot(),
            store_bytes_sent=getattr(service.store, "bytes_sent", 0),
            app_metrics=service.app_metrics.answer(), app_metrics_dropped=service.app_metrics.dropped,
        )  # fmt: skip

    def workers(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        pool = getattr(self.service, "pool", None)  # set once the service runs
        for worker in pool.workers.values() if pool is not None else ():
            if worker.state != "dead":
                counts[worker.state.upper()] = counts.get(worker.state.upper(), 0) + 1
        actors = self.service.actors
        if actors is not None:
            counts["ACTOR"] = len(actors.processes())
        return counts

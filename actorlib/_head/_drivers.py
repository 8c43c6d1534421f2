"""The jobs the head knows today: drivers that registered (one job each), live and recently ended."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from .._state import JobState

MAX_ENDED = 1000  # ended drivers kept for ``actorlib list jobs`` (the oldest are forgotten first)


class DriverTable:
    """Live drivers by channel, plus a bounded history of ended ones (in memory: a head restart forgets them)."""

    def __init__(self, max_ended: int = MAX_ENDED) -> None:
        self.max_ended = max_ended
        self._live: dict[Any, JobState] = {}
        self._ended: OrderedDict[str, JobState] = OrderedDict()

    def started(self, channel: Any, job_id: str, *, pid: int, ip: str, namespace: str, entrypoint: str) -> None:
        self._live[channel] = JobState(
            job_id=job_id, entrypoint=entrypoint, driver_pid=pid, driver_ip=ip, namespace=namespace,
            start_time=time.time(),
        )  # fmt: skip

    def ended(self, channel: Any) -> None:
        job = self._live.pop(channel, None)
        if job is None:
            return
        job.status, job.end_time = "FINISHED", time.time()
        self._ended[job.job_id] = job
        while len(self._ended) > self.max_ended:
            self._ended.popitem(last=False)

    def states(self) -> list[JobState]:
        """Live drivers first, then ended ones, newest first."""
        live = sorted(self._live.values(), key=lambda j: -j.start_time)
        return live + list(reversed(self._ended.values()))

"""Each node's cheap running numbers (the dashboard's plots and ``/metrics``), and call latency
histograms (pure: the node's task history fills them, the head reads them)."""

from __future__ import annotations

import bisect

import msgspec

from ._app_metrics import AppMetric
from ._schema import _State

# Upper bounds (seconds) of the call latency buckets, Prometheus style (+Inf is implied).
LATENCY_BOUNDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
MAX_LATENCY_SERIES = 200  # distinct (type, name) pairs per node; later ones are counted under name "(other)"
OTHER = "(other)"


class CallLatency(_State):
    """How long one function's (or actor method's) calls took on one node, since the node started."""

    type: str  # NORMAL_TASK | ACTOR_TASK
    name: str
    counts: list[int]  # per bucket of ``NodeStats.latency_bounds`` (not cumulative), then the +Inf bucket
    count: int = 0
    sum: float = 0.0  # seconds


class NodeStats(_State):
    """One node's numbers at ``time``: the machine, this node's processes, its tasks, store and workers."""

    node_id: str
    time: float  # wall clock
    cpu_count: int = 0
    cpu_percent: float = 0.0  # the machine's, 0-100, since the previous stats query
    memory_used: int = 0  # the machine's
    memory_total: int = 0
    process_cpu_percent: float = 0.0  # the node process and every process it supervises (100 = one core)
    process_rss: int = 0
    processes: int = 0
    workers: dict[str, int] = {}  # task workers by state (STARTING | IDLE | LEASED), and ACTOR processes
    tasks_running: int = 0
    tasks_finished: int = 0  # calls that succeeded since the node started
    tasks_failed: int = 0
    store_used: int = 0
    store_capacity: int = 0
    store_objects: int = 0
    latency_bounds: list[float] = []
    latency: list[CallLatency] = []
    store_bytes_sent: int = 0  # object bytes this node's store sent to other nodes since it started
    app_metrics: list[AppMetric] = []  # actorlib.util.metrics of this node's processes (docs/dashboard.md)
    app_metrics_dropped: int = 0  # series and metrics left out past the bounds since the node started


class StatsResult(_State):
    """``StateQuery(kind="stats")``: every live node's NodeStats; ``partial`` names nodes that did not answer."""

    nodes: list[NodeStats]
    partial: list[str] = []


class LatencyHistograms:
    """Cumulative call latency histograms by (type, name), bounded in the number of series."""

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BOUNDS, max_series: int = MAX_LATENCY_SERIES) -> None:
        self.bounds = bounds
        self.max_series = max_series
        self._series: dict[tuple[str, str], list[float]] = {}  # counts per bucket, +Inf, then count and sum

    def add(self, type_: str, name: str, seconds: float) -> None:
        key = (type_, name)
        series = self._series.get(key)
        if series is None:
            if len(self._series) >= self.max_series:
                key = (type_, OTHER)
            series = self._series.setdefault(key, [0] * (len(self.bounds) + 3))
        seconds = max(0.0, seconds)
        series[bisect.bisect_left(self.bounds, seconds)] += 1
        series[-2] += 1
        series[-1] += seconds

    def snapshot(self) -> list[CallLatency]:
        return [
            CallLatency(type=type_, name=name, counts=[int(c) for c in series[:-2]], count=int(series[-2]), sum=series[-1])
            for (type_, name), series in self._series.items()
        ]


def merge_latency(stats: list[NodeStats]) -> dict[tuple[str, str], CallLatency]:
    """The cluster's histograms: every node's series of one (type, name) added up."""
    merged: dict[tuple[str, str], CallLatency] = {}
    for node in stats:
        for series in node.latency:
            key = (series.type, series.name)
            into = merged.get(key)
            if into is None:
                merged[key] = msgspec.structs.replace(series, counts=list(series.counts))
            elif len(into.counts) == len(series.counts):
                into.counts = [a + b for a, b in zip(into.counts, series.counts)]
                into.count += series.count
                into.sum += series.sum
    return merged

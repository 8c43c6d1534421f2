"""The application metrics of one node's processes (``actorlib.util.metrics``), merged.

Each driver and worker connected to the node reports cumulative snapshots
(``AppMetrics``); the table keeps the latest per process. When a process's
connection ends, its counters and histograms are folded into the node's retired
totals, so they never go back, and its gauges are dropped. The first definition
of a name on the node wins: a process defining it with another type, other tag
keys or other boundaries has that metric dropped, with a warning naming both.
Everything is bounded (``actorlib._state._app_metrics``); what is past a bound
is dropped, counted (``dropped``) and warned about (throttled).
"""

from __future__ import annotations

import logging
import math
from typing import Any, NamedTuple

from .._state._app_metrics import (
    KINDS,
    MAX_METRICS,
    MAX_NODE_SERIES,
    MAX_SERIES,
    AppMetric,
    AppSeries,
    boundaries_problem,
    name_problem,
    tag_key_problem,
)
from .._wire import AppMetrics, MetricPoint, MetricReport
from .._wire._throttle import Throttle

log = logging.getLogger("actorlib.node")
MAX_WARNED = 1000


class Definition(NamedTuple):
    kind: str
    tag_keys: tuple[str, ...]
    boundaries: tuple[float, ...]
    description: str
    who: str  # the process that defined it first here

    def describe(self) -> str:
        text = f"a {self.kind} with tag keys {list(self.tag_keys)}"
        return f"{text} and boundaries {list(self.boundaries)}" if self.boundaries else text


class AppMetricsTable:
    """Latest snapshot per live process, retired totals, definitions; ``answer()`` merges them."""

    def __init__(self, max_metrics: int = MAX_METRICS, max_series: int = MAX_SERIES, max_node_series: int = MAX_NODE_SERIES) -> None:
        self.max_metrics = max_metrics
        self.max_series = max_series
        self.max_node_series = max_node_series
        self.definitions: dict[str, Definition] = {}
        self._live: dict[Any, dict[str, list[MetricPoint]]] = {}  # by process (its connection)
        self._retired: dict[str, dict[tuple[str, ...], list[float]]] = {}  # counter [total]; histogram [counts..., sum]
        self.dropped = 0  # metrics and series refused since the node started
        self._throttle = Throttle(what="application metrics")
        self._warned: set[tuple[str, str]] = set()

    # ---- reports ---------------------------------------------------------------------

    def report(self, process: Any, who: str, message: AppMetrics) -> None:
        """``process`` (its connection, any hashable) sent its snapshot; ``who`` names it in warnings."""
        kept: dict[str, list[MetricPoint]] = {}
        for metric in message.metrics:
            definition = self._definition(metric, who)
            if definition is not None:
                kept[metric.name] = self._points(metric, definition, who)
        before = self._live.get(process)
        self._live[process] = kept
        if before is not None and not before.keys() <= kept.keys():
            self._forget_unused()

    def _definition(self, metric: MetricReport, who: str) -> Definition | None:
        problem = _problem(metric)
        if problem:
            self._drop(metric.name, who, f"metric {metric.name[:200]!r} from {who} is dropped: {problem}")
            return None
        offered = Definition(metric.kind, tuple(metric.tag_keys), tuple(metric.boundaries), metric.description, who)
        known = self.definitions.get(metric.name)
        if known is None:
            if len(self.definitions) >= self.max_metrics:
                self._drop(metric.name, who, f"metric {metric.name!r} from {who} is dropped: this node has {self.max_metrics} metrics already")
                return None
            self.definitions[metric.name] = offered
            return offered
        if known[:3] != offered[:3]:
            self._drop(
                metric.name, who,
                f"metric {metric.name!r} from {who} ({offered.describe()}) is dropped: {known.who} defined it first on this node, as {known.describe()}",
            )  # fmt: skip
            return None
        return known

    def _points(self, metric: MetricReport, definition: Definition, who: str) -> list[MetricPoint]:
        buckets = len(definition.boundaries) + 1
        points = []
        for point in metric.points:
            if len(points) >= self.max_series:
                self._drop(metric.name, who, f"metric {metric.name!r} from {who}: more than {self.max_series} series; the rest are dropped")
                break
            if _point_ok(point, definition.kind, len(definition.tag_keys), buckets):
                points.append(point)
            else:
                self._drop(metric.name, who, f"metric {metric.name!r} from {who}: a malformed series is dropped")
        return points

    def _drop(self, name: str, who: str, message: str) -> None:
        self.dropped += 1
        key = (name[:200], who)
        if key not in self._warned:
            if len(self._warned) < MAX_WARNED:
                self._warned.add(key)
            self._throttle.warning(log, "%s", message)

    def gone(self, process: Any) -> None:
        """``process``'s connection ended: keep its counters and histograms, drop its gauges."""
        kept = self._live.pop(process, None)
        if not kept:
            return
        for name, points in kept.items():
            definition = self.definitions[name]
            if definition.kind == "gauge":
                continue
            retired = self._retired.setdefault(name, {})
            for point in points:
                key = tuple(point.tags)
                into = retired.get(key)
                if into is None:
                    if len(retired) >= self.max_series:
                        self.dropped += 1
                        continue
                    into = retired[key] = [0.0] * (len(point.counts) + 1)
                _add(into, point)
        self._forget_unused()

    def _forget_unused(self) -> None:
        """Definitions nothing holds any more (gauges of ended processes): free the name."""
        if len(self.definitions) <= len(self._retired):
            return
        used = set(self._retired)
        for kept in self._live.values():
            used.update(kept)
        for name in [name for name in self.definitions if name not in used]:
            del self.definitions[name]

    # ---- the stats answer --------------------------------------------------------------

    def answer(self) -> list[AppMetric]:
        """Every metric of the node: live processes' snapshots over the retired totals."""
        metrics = []
        budget = self.max_node_series
        for name, definition in self.definitions.items():
            merged: dict[tuple[str, ...], list[float]] = {key: list(values) for key, values in self._retired.get(name, {}).items()}
            for kept in self._live.values():
                for point in kept.get(name, ()):
                    key = tuple(point.tags)
                    into = merged.get(key)
                    if into is None:
                        if len(merged) >= self.max_series:
                            continue
                        into = merged[key] = [0.0] * (len(point.counts) + 1) if definition.kind != "gauge" else [0.0, -math.inf]
                    if definition.kind == "gauge":
                        if point.time >= into[1]:
                            into[0], into[1] = point.value, point.time
                    else:
                        _add(into, point)
            items = sorted(merged.items())[: max(0, budget)]
            budget -= len(items)
            metrics.append(
                AppMetric(
                    name=name, kind=definition.kind, description=definition.description, tag_keys=list(definition.tag_keys),
                    boundaries=list(definition.boundaries), series=[_series(definition.kind, key, values) for key, values in items],
                )  # fmt: skip
            )
        return metrics


def _add(into: list[float], point: MetricPoint) -> None:
    """Add a counter's total, or a histogram's counts and sum, into ``into``."""
    for i, count in enumerate(point.counts):
        into[i] += count
    into[-1] += point.value


def _series(kind: str, key: tuple[str, ...], values: list[float]) -> AppSeries:
    if kind == "histogram":
        return AppSeries(tags=list(key), value=values[-1], counts=[int(c) for c in values[:-1]])
    return AppSeries(tags=list(key), value=values[0] if kind == "gauge" else values[-1])


def _problem(metric: MetricReport) -> str:
    """Why a reported metric's definition is unusable ("" if it is fine): processes check
    it when they define it, but a node does not trust what arrives."""
    if metric.kind not in KINDS:
        return f"unknown kind {metric.kind[:50]!r}"
    problem = name_problem(metric.name) or next((p for key in metric.tag_keys if (p := tag_key_problem(metric.kind, key))), "")
    if problem:
        return problem
    if len(set(metric.tag_keys)) != len(metric.tag_keys):
        return "a tag key appears twice"
    if metric.kind == "histogram":
        return boundaries_problem(metric.boundaries)
    return "boundaries on a metric that is not a histogram" if metric.boundaries else ""


def _point_ok(point: MetricPoint, kind: str, tags: int, buckets: int) -> bool:
    if len(point.tags) != tags or not math.isfinite(point.value):
        return False
    if kind == "histogram":
        return len(point.counts) == buckets and all(c >= 0 for c in point.counts)
    return not point.counts and (kind == "gauge" or point.value >= 0)

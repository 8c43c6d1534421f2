"""This process's metrics: cumulative values per tag combination, thread-safe, bounded.

Recording is a lock, a dict lookup and an addition (``Family.record``); the first
record after a report schedules the next one on this process's runtime (``_report``).
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
import warnings
from typing import Any

from .._state._app_metrics import MAX_METRICS, MAX_SERIES
from .._wire import AppMetrics, MetricPoint, MetricReport
from .._wire._throttle import Throttle

log = logging.getLogger("actorlib.metrics")
_THROTTLE = Throttle(what="metrics")


class Family:
    """One metric's series in this process. Series are lists, changed under ``lock``:
    counter [total]; gauge [value, time set]; histogram [count per bucket..., +Inf, sum]."""

    def __init__(self, registry: Registry | None, name: str, kind: str, description: str,
                 tag_keys: tuple[str, ...], boundaries: tuple[float, ...]) -> None:  # fmt: skip
        self.registry = registry  # None: a definition this process refused (records are checked, not kept)
        self.name = name
        self.kind = kind
        self.description = description
        self.tag_keys = tag_keys
        self.boundaries = boundaries
        self.lock = threading.Lock()
        self.series: dict[tuple[str, ...], list[float]] = {}
        self.dropped = 0

    def record(self, key: tuple[str, ...], value: float) -> None:
        registry = self.registry
        if registry is None:
            return
        with self.lock:
            series = self.series.get(key)
            if series is None:
                if len(self.series) >= MAX_SERIES:
                    self.dropped += 1
                    if self.dropped == 1:
                        _THROTTLE.warning(log, "metric %r has %d tag combinations already: new ones are not recorded", self.name, MAX_SERIES)
                    return
                series = self.series[key] = [0.0] * (len(self.boundaries) + 2 if self.kind == "histogram" else 2)
            if self.kind == "counter":
                series[0] += value
            elif self.kind == "gauge":
                series[0] = value
                series[1] = time.time()
            else:
                series[bisect.bisect_left(self.boundaries, value)] += 1
                series[-1] += value
        if not registry.scheduled:
            registry.changed()

    def report(self) -> MetricReport:
        with self.lock:
            items = [(list(key), list(series)) for key, series in self.series.items()]
        if self.kind == "histogram":
            points = [MetricPoint(tags, s[-1], [int(c) for c in s[:-1]]) for tags, s in items]
        elif self.kind == "gauge":
            points = [MetricPoint(tags, s[0], [], s[1]) for tags, s in items]
        else:
            points = [MetricPoint(tags, s[0]) for tags, s in items]
        return MetricReport(self.name, self.kind, self.description, list(self.tag_keys), list(self.boundaries), points)


class Registry:
    """Every metric this process defined, by name: the first definition of a name wins."""

    def __init__(self, period: float) -> None:
        self.period = period  # seconds, at least, between two reports
        self.families: dict[str, Family] = {}
        self.lock = threading.Lock()
        self.scheduled = False  # a report is on its way: records need not schedule one
        self.reporter: Any = None  # the _report.Reporter of the runtime it reports through

    def define(self, name: str, kind: str, description: str, tag_keys: tuple[str, ...],
               boundaries: tuple[float, ...] = ()) -> Family:  # fmt: skip
        with self.lock:
            family = self.families.get(name)
            if family is None:
                if len(self.families) < MAX_METRICS:
                    family = self.families[name] = Family(self, name, kind, description, tag_keys, boundaries)
                    return family
                problem = f"this process has {MAX_METRICS} metrics already"
            elif (family.kind, family.tag_keys, family.boundaries) == (kind, tag_keys, boundaries):
                return family  # the same metric, defined again (in each call of a task, say): shared
            else:
                problem = f"it is already defined here as {_describe(family.kind, family.tag_keys, family.boundaries)}"
        warnings.warn(f"metric {name!r} ({_describe(kind, tag_keys, boundaries)}) will not be recorded: {problem}", UserWarning, stacklevel=4)
        return Family(None, name, kind, description, tag_keys, boundaries)

    def message(self) -> AppMetrics:
        with self.lock:
            families = list(self.families.values())
        return AppMetrics(pid=os.getpid(), metrics=[family.report() for family in families])

    def changed(self) -> None:
        """A record found no report scheduled: schedule one (if this process has a runtime)."""
        from ._report import schedule

        schedule(self)


def _describe(kind: str, tag_keys: tuple[str, ...], boundaries: tuple[float, ...]) -> str:
    text = f"a {kind} with tag keys {tag_keys}"
    return f"{text} and boundaries {list(boundaries)}" if boundaries else text


_registry: Registry | None = None
_registry_lock = threading.Lock()
PERIOD_ENV = "ACTORLIB_METRICS_REPORT_PERIOD"
DEFAULT_PERIOD = 2.0


def registry() -> Registry:
    """This process's registry, made at the first metric definition."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = Registry(report_period())
    return _registry


def current_registry() -> Registry | None:
    """The registry if this process defined a metric, else None (nothing to report)."""
    return _registry


def report_period(environ: Any = os.environ) -> float:
    """Seconds between two reports of a process's metrics (``ACTORLIB_METRICS_REPORT_PERIOD``)."""
    text = environ.get(PERIOD_ENV, "")
    if not text:
        return DEFAULT_PERIOD
    try:
        period = float(text)
    except ValueError:
        period = -1.0
    if not 0 < period < 3600:
        raise ValueError(f"{PERIOD_ENV} must be a number of seconds above 0 (and below 3600), got {text!r}")
    return period

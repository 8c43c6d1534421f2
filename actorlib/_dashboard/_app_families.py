"""``/metrics``: the application metrics (``actorlib.util.metrics``) of every node, as Prometheus
families under the user's names, labelled with the user's tag keys plus ``node_id`` and
``node_ip`` (pure, but for throttled warnings).

A name means one family: the first node (in the state API's order) that reports it decides its
type, tag keys and boundaries; a node reporting it otherwise has its series left out, with a
warning. So is a family whose exposed names would clash with an earlier one's (a counter
``x`` is exposed as ``x_total``, so a gauge ``x_total`` cannot be exposed beside it).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from .._state import AppMetric, StatsResult
from .._state._app_metrics import NODE_LABELS
from .._wire._throttle import Throttle

log = logging.getLogger("actorlib.dashboard")
_THROTTLE = Throttle(what="application metrics")
_FAMILIES = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily, "histogram": HistogramMetricFamily}


def app_families(stats: StatsResult, node_ips: dict[str, str]) -> list[Metric]:
    """One family per application metric name, with every node's series of it."""
    families: dict[str, tuple[Metric, tuple[object, ...], str]] = {}
    claimed: set[str] = set()
    for node in stats.nodes:
        labels = [node.node_id, node_ips.get(node.node_id, "")]
        for metric in node.app_metrics:
            definition = (metric.kind, tuple(metric.tag_keys), tuple(metric.boundaries))
            entry = families.get(metric.name)
            if entry is None:
                names = exposed_names(metric.kind, metric.name)
                if names & claimed:
                    _warn(f"metric {metric.name!r} of node {node.node_id[:12]} is left out of /metrics: it would be exposed as {sorted(names & claimed)}, which another metric uses")
                    continue
                claimed |= names
                family = _FAMILIES[metric.kind](metric.name, metric.description, labels=[*metric.tag_keys, *NODE_LABELS])
                entry = families[metric.name] = (family, definition, node.node_id)
            elif entry[1] != definition:
                _warn(
                    f"metric {metric.name!r} of node {node.node_id[:12]} (a {metric.kind} with tag keys {metric.tag_keys}) is left out of "
                    f"/metrics: node {entry[2][:12]} has it as a {entry[1][0]} with tag keys {list(entry[1][1])}"  # type: ignore[call-overload]
                )  # fmt: skip
                continue
            _add_series(entry[0], metric, labels)
    return [family for family, _, _ in families.values()]


def exposed_names(kind: str, name: str) -> set[str]:
    """The family and sample names a metric takes in the text format."""
    if kind == "counter":
        base = name[: -len("_total")] if name.endswith("_total") else name
        return {base, f"{base}_total", f"{base}_created"}
    if kind == "histogram":
        return {name, *(f"{name}_{suffix}" for suffix in ("bucket", "count", "sum", "created"))}
    return {name}


def _add_series(family: Metric, metric: AppMetric, node_labels: list[str]) -> None:
    for series in metric.series:
        values = [*series.tags, *node_labels]
        if metric.kind == "histogram":
            family.add_metric(values, cumulative_buckets(metric.boundaries, series.counts), series.value)  # type: ignore[call-arg]
        else:
            family.add_metric(values, series.value)  # type: ignore[call-arg]


def cumulative_buckets(bounds: Iterable[float], counts: Iterable[int]) -> list[tuple[str, float]]:
    """Prometheus buckets (``le``, cumulative count) from per-bucket counts whose last is +Inf."""
    buckets, running = [], 0
    for bound, count in zip([*bounds, math.inf], counts):
        running += count
        buckets.append(("+Inf" if math.isinf(bound) else repr(float(bound)), float(running)))
    return buckets


def _warn(message: str) -> None:
    _THROTTLE.warning(log, "%s", message)

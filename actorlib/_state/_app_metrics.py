"""Application metrics (``actorlib.util.metrics``) as a node reports them, and the rules every
side checks (pure): metric names, tag keys, histogram boundaries, and the bounds.

A process defines metrics and records into them; it reports cumulative snapshots to its
node, which merges the live processes' snapshots with what ended processes left behind
(``_node._app_metrics``); the node's ``stats`` answer carries the result (``AppMetric``),
and ``/metrics`` renders it (``_dashboard._app_families``).
"""

from __future__ import annotations

import math
import re

from ._schema import _State

KINDS = ("counter", "gauge", "histogram")
NODE_LABELS = ("node_id", "node_ip")  # the labels /metrics adds to every per-node family
RESERVED_PREFIX = "actorlib_"  # our own families
MAX_METRICS = 200  # metric names per process, and per node
MAX_SERIES = 1000  # tag combinations per metric, per process and per node
MAX_NODE_SERIES = 10_000  # series in one node's answer, all metrics together
MAX_BOUNDARIES = 100  # histogram buckets (+Inf besides)
MAX_TAG_KEYS = 20
MAX_TEXT = 1000  # characters of a name, a tag key, a tag value or a description

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")  # Prometheus' metric names (Ray checks the same)
_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")  # Prometheus' label names


class AppSeries(_State, frozen=True):
    """One tag combination of an application metric on one node."""

    tags: list[str]  # values, in the metric's ``tag_keys`` order
    value: float = 0.0  # counter: the total; gauge: the value; histogram: the sum of observations
    counts: list[int] = []  # histogram: observations per bucket of ``boundaries`` (not cumulative), then +Inf


class AppMetric(_State):
    """One application metric on one node: its definition (the first a process there made) and
    its series, summed over the node's processes (counters and histograms since the node started;
    gauges: the value set last, by live processes only)."""

    name: str
    kind: str  # counter | gauge | histogram
    description: str = ""
    tag_keys: list[str] = []
    boundaries: list[float] = []
    series: list[AppSeries] = []


def name_problem(name: object) -> str:
    """Why ``name`` cannot name a metric ("" if it can)."""
    if not isinstance(name, str):
        return f"metric names must be str, got {type(name)}"
    if not name:
        return "Empty name is not allowed. Please provide a metric name."
    if len(name) > MAX_TEXT:
        return f"metric names are at most {MAX_TEXT} characters, got {len(name)}"
    if not _NAME.match(name):
        return (
            f"Invalid metric name: {name!r}. Metric names can only contain letters, numbers, _, and :. "
            "Metric names cannot start with numbers."
        )
    if name.startswith(RESERVED_PREFIX):
        return f"Invalid metric name: {name!r}. Names starting with {RESERVED_PREFIX!r} are actorlib's own metrics."
    return ""


def tag_key_problem(kind: str, key: str) -> str:
    """Why ``key`` cannot be a tag key of a ``kind`` metric ("" if it can). Type checks are the caller's."""
    if not _LABEL.match(key) or key.startswith("__") or len(key) > MAX_TEXT:
        return (
            f"Invalid tag key {key!r}: tag keys are Prometheus label names (letters, numbers and _, "
            "not starting with a number or with __)."
        )
    if key in NODE_LABELS:
        return f"Invalid tag key {key!r}: /metrics adds {' and '.join(NODE_LABELS)} to every metric itself."
    if kind == "histogram" and key == "le":
        return "Invalid tag key 'le': Prometheus uses it for histogram buckets."
    return ""


def boundaries_problem(boundaries: object) -> str:
    """Why ``boundaries`` cannot be a histogram's bucket boundaries ("" if they can)."""
    if boundaries is None or not hasattr(boundaries, "__len__") or len(boundaries) == 0:  # type: ignore[arg-type]
        return (
            "boundaries argument should be provided when using the Histogram class. "
            'e.g., Histogram("name", boundaries=[1.0, 2.0])'
        )
    bounds = list(boundaries)  # type: ignore[call-overload]
    for i, boundary in enumerate(bounds):
        if isinstance(boundary, bool) or not isinstance(boundary, (int, float)):
            return f"Invalid `boundaries` argument at index {i}, {bounds}. Use numbers (int or float)."
        if boundary <= 0:
            return f"Invalid `boundaries` argument at index {i}, {bounds}. Use positive values for the arguments."
        if not math.isfinite(boundary):
            return f"Invalid `boundaries` argument at index {i}, {bounds}. Use finite values (+Inf is implied)."
        if i and boundary <= bounds[i - 1]:
            return f"Invalid `boundaries` argument at index {i}, {bounds}. Use increasing values."
    if len(bounds) > MAX_BOUNDARIES:
        return f"Invalid `boundaries` argument: at most {MAX_BOUNDARIES} boundaries, got {len(bounds)}."
    return ""

"""actorlib.util.metrics without a cluster: Ray's argument checks, the process registry, the
node's merging and retiring of its processes' snapshots, and the /metrics families."""

from __future__ import annotations

import itertools
import logging
import math
import pickle
import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from actorlib._app_metrics import _registry
from actorlib._app_metrics._registry import Registry, report_period
from actorlib._dashboard._app_families import app_families
from actorlib._dashboard._metrics import _Snapshot
from actorlib._node._app_metrics import AppMetricsTable
from actorlib._state import AppMetric, AppSeries, NodeStats, StatsResult
from actorlib._wire import AppMetrics, MetricPoint, MetricReport
from actorlib.util.metrics import Counter, Gauge, Histogram

_names = itertools.count()


def unique(prefix: str = "test_metric") -> str:
    """The registry is this process's: each test defines names of its own."""
    return f"{prefix}_{next(_names)}"


def points(name: str) -> dict[tuple[str, ...], MetricPoint]:
    (report,) = [m for m in _registry.registry().message().metrics if m.name == name]
    return {tuple(p.tags): p for p in report.points}


# ---- Ray's argument checks (messages as in Ray 2.60's ray/util/metrics.py) ------------------


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: Counter(""), ValueError, "Empty name is not allowed. Please provide a metric name."),
        (lambda: Counter("9lives"), ValueError, "Invalid metric name: '9lives'. Metric names can only contain letters"),
        (lambda: Gauge("with space"), ValueError, "Invalid metric name: 'with space'"),
        (lambda: Counter("actorlib_nodes"), ValueError, "Names starting with 'actorlib_' are actorlib's own metrics"),
        (lambda: Counter(unique(), tag_keys=["a"]), TypeError, "tag_keys should be a tuple type, got: <class 'list'>"),
        (lambda: Counter(unique(), tag_keys=(1,)), TypeError, "Tag keys must be str, got <class 'int'>."),
        (lambda: Counter(unique(), tag_keys=("node_id",)), ValueError, "/metrics adds node_id and node_ip to every metric itself"),
        (lambda: Gauge(unique(), tag_keys=("node_ip",)), ValueError, "Invalid tag key 'node_ip'"),
        (lambda: Gauge(unique(), tag_keys=("has-dash",)), ValueError, "Invalid tag key 'has-dash': tag keys are Prometheus label names"),
        (lambda: Gauge(unique(), tag_keys=("a", "a")), ValueError, "tag_keys has a key more than once"),
        (lambda: Histogram(unique()), ValueError, "boundaries argument should be provided when using the Histogram class"),
        (lambda: Histogram(unique(), boundaries=[]), ValueError, "boundaries argument should be provided"),
        (lambda: Histogram(unique(), boundaries=[0, 1]), ValueError,
         "Invalid `boundaries` argument at index 0, [0, 1]. Use positive values for the arguments."),
        (lambda: Histogram(unique(), boundaries=[2, 1]), ValueError, "Invalid `boundaries` argument at index 1, [2, 1]. Use increasing values."),
        (lambda: Histogram(unique(), boundaries=[1, math.inf]), ValueError, "Use finite values"),
        (lambda: Histogram(unique(), boundaries=[1.0], tag_keys=("le",)), ValueError, "Invalid tag key 'le'"),
    ],
)  # fmt: skip
def test_definitions_are_checked_as_ray_checks_them(make, error, message) -> None:
    with pytest.raises(error) as raised:
        make()
    assert message in str(raised.value)


def test_records_are_checked_as_ray_checks_them() -> None:
    counter = Counter(unique(), tag_keys=("route",))
    cases = [
        (lambda: counter.inc(0, tags={"route": "/"}), ValueError, "value must be >0, got 0"),
        (lambda: counter.inc(-1.5, tags={"route": "/"}), ValueError, "value must be >0, got -1.5"),
        (lambda: counter.inc("1", tags={"route": "/"}), TypeError, "value must be int or float, got <class 'str'>."),
        (lambda: counter.inc(), ValueError, "Missing value for tag key(s): route."),
        (lambda: counter.inc(tags={"route": 1}), TypeError, "Tag values must be str, got <class 'int'>."),
        (lambda: counter.inc(tags={"route": "/", "other": "x"}), ValueError, "Unrecognized tag key other."),
        (lambda: counter.set_default_tags({"z": "1"}), ValueError, "Unrecognized tag key z."),
        (lambda: counter.set_default_tags({"route": 2}), TypeError, "Tag values must be str, got <class 'int'>."),
        (lambda: counter.inc(math.inf, tags={"route": "/"}), ValueError, "value must be a finite number, got inf"),
        (lambda: Gauge(unique()).set(math.nan), ValueError, "value must be a finite number, got nan"),
        (lambda: Histogram(unique(), boundaries=[1]).observe(None), TypeError, "value must be int or float, got <class 'NoneType'>."),
    ]  # fmt: skip
    for call, error, message in cases:
        with pytest.raises(error) as raised:
            call()
        assert message in str(raised.value)
    assert points(counter._name) == {}  # nothing was recorded by a refused call


def test_colons_warn_as_in_ray_and_none_is_a_no_op_for_gauges() -> None:
    with pytest.warns(FutureWarning, match="contains a : character"):
        Counter(unique("test:colon"))
    gauge = Gauge(unique())
    gauge.set(None)
    assert points(gauge._name) == {}


def test_default_tags_info_and_pickling_match_ray() -> None:
    name = unique()
    counter = Counter(name, description="d", tag_keys=("a", "b"))
    assert counter.set_default_tags({"a": "x"}) is counter
    counter.inc(tags={"b": "y"})
    counter.inc(2, tags={"a": "z", "b": "y"})
    assert counter.info == {"name": name, "description": "d", "tag_keys": ("a", "b"), "default_tags": {"a": "x"}}
    histogram = Histogram(unique(), boundaries=[1, 2])
    assert histogram.info["boundaries"] == [1, 2]
    # A metric a task captures is defined again where it runs (default tags stay behind, as in Ray);
    # in one process both objects record into the same series.
    again = pickle.loads(pickle.dumps(counter))
    assert again.info["default_tags"] == {} and again is not counter
    again.inc(4, tags={"a": "x", "b": "y"})
    assert {key: p.value for key, p in points(name).items()} == {("x", "y"): 5.0, ("z", "y"): 2.0}
    assert pickle.loads(pickle.dumps(histogram)).info["boundaries"] == [1, 2]


# ---- the process registry ------------------------------------------------------------------------


def test_records_from_many_threads_are_all_counted() -> None:
    counter = Counter(unique(), tag_keys=("t",))
    histogram = Histogram(unique(), boundaries=[0.5])

    def work(i: int) -> None:
        for _ in range(5000):
            counter.inc(tags={"t": str(i % 2)})
            histogram.observe(1)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {key: p.value for key, p in points(counter._name).items()} == {("0",): 20000.0, ("1",): 20000.0}
    assert points(histogram._name)[()].counts == [0, 40000]


def test_histograms_bucket_like_prometheus_and_gauges_keep_the_last_value() -> None:
    histogram = Histogram(unique(), boundaries=[1, 2])
    for value in (0.5, 1, 1.5, 2, 3):
        histogram.observe(value)
    point = points(histogram._name)[()]
    assert point.counts == [2, 2, 1] and point.value == 8.0  # le=1 holds 1, as Prometheus' buckets do
    gauge = Gauge(unique())
    gauge.set(3)
    gauge.set(-1.5)
    assert points(gauge._name)[()].value == -1.5 and points(gauge._name)[()].time > 0


def test_one_name_is_one_metric_in_a_process() -> None:
    name = unique()
    Counter(name, tag_keys=("a",)).inc(tags={"a": "1"})
    Counter(name, tag_keys=("a",)).inc(tags={"a": "1"})  # defined again (in every call of a task): shared
    with pytest.warns(UserWarning, match=f"metric '{name}' \\(a gauge with tag keys \\('a',\\)\\) will not be recorded: it is already defined here as a counter"):
        other = Gauge(name, tag_keys=("a",))
    other.set(5, tags={"a": "1"})  # checked, not kept
    with pytest.raises(ValueError):
        other.set(5)
    (report,) = [m for m in _registry.registry().message().metrics if m.name == name]
    assert report.kind == "counter" and report.points == [MetricPoint(["1"], 2.0)]


def test_a_process_keeps_a_bounded_number_of_series_and_metrics(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "MAX_SERIES", 3)
    monkeypatch.setattr(_registry, "MAX_METRICS", 1)
    registry = Registry(period=1.0)
    family = registry.define("m", "counter", "", ("t",))
    for i in range(5):
        family.record((str(i),), 1.0)
    assert sorted(p.tags[0] for p in family.report().points) == ["0", "1", "2"] and family.dropped == 2
    with pytest.warns(UserWarning, match="this process has 1 metrics already"):
        refused = registry.define("n", "counter", "", ())
    refused.record((), 1.0)
    assert [m.name for m in registry.message().metrics] == ["m"]


def test_the_report_period_setting_is_checked() -> None:
    assert report_period({}) == 2.0 and report_period({"ACTORLIB_METRICS_REPORT_PERIOD": "0.5"}) == 0.5
    for bad in ("0", "-1", "soon", "nan"):
        with pytest.raises(ValueError, match="ACTORLIB_METRICS_REPORT_PERIOD must be a number of seconds above 0"):
            report_period({"ACTORLIB_METRICS_REPORT_PERIOD": bad})


# ---- the node's table: latest snapshot per process, retired totals ----------------------------


def counter(name: str, *series: tuple[list[str], float], tag_keys: tuple[str, ...] = ("a",)) -> MetricReport:
    return MetricReport(name, "counter", "c", list(tag_keys), [], [MetricPoint(tags, value) for tags, value in series])


def gauge(name: str, value: float, at: float) -> MetricReport:
    return MetricReport(name, "gauge", "", [], [], [MetricPoint([], value, [], at)])


def histogram(name: str, counts: list[int], total: float) -> MetricReport:
    return MetricReport(name, "histogram", "", [], [1.0, 2.0], [MetricPoint([], total, counts)])


def report(*metrics: MetricReport, pid: int = 1) -> AppMetrics:
    return AppMetrics(pid=pid, metrics=list(metrics))


def values(table: AppMetricsTable) -> dict[str, dict[tuple[str, ...], object]]:
    return {
        m.name: {tuple(s.tags): (s.counts, s.value) if m.kind == "histogram" else s.value for s in m.series}
        for m in table.answer()
    }


def test_the_node_sums_processes_and_keeps_what_ended_processes_counted() -> None:
    table = AppMetricsTable()
    table.report("p1", "p1", report(counter("c", (["x"], 3)), gauge("g", 10, at=1), histogram("h", [1, 0, 0], 0.5)))
    table.report("p2", "p2", report(counter("c", (["x"], 4), (["y"], 1)), gauge("g", 20, at=2), histogram("h", [0, 1, 1], 4.5)))
    assert values(table) == {"c": {("x",): 7, ("y",): 1}, "g": {(): 20}, "h": {(): ([1, 1, 1], 5.0)}}
    table.report("p1", "p1", report(counter("c", (["x"], 5)), gauge("g", 10, at=1), histogram("h", [1, 0, 0], 0.5)))
    table.report("p1", "p1", report(counter("c", (["x"], 5)), gauge("g", 10, at=1), histogram("h", [1, 0, 0], 0.5)))  # repeated: no harm
    assert values(table)["c"] == {("x",): 9, ("y",): 1}
    table.gone("p2")  # its counters and histograms stay, its gauge goes
    assert values(table) == {"c": {("x",): 9, ("y",): 1}, "g": {(): 10}, "h": {(): ([1, 1, 1], 5.0)}}
    table.gone("p1")
    assert values(table) == {"c": {("x",): 9, ("y",): 1}, "h": {(): ([1, 1, 1], 5.0)}}
    assert "g" not in table.definitions  # nothing holds it: another process may define it anew
    table.report("p3", "p3", report(counter("c", (["x"], 1))))
    assert values(table)["c"] == {("x",): 10, ("y",): 1}  # monotonic across processes


def test_the_first_definition_on_a_node_wins(caplog: pytest.LogCaptureFixture) -> None:
    table = AppMetricsTable()
    table.report("p1", "worker:aa (pid 1)", report(counter("c", (["x"], 3))))
    with caplog.at_level(logging.WARNING, logger="actorlib.node"):
        table.report("p2", "worker:bb (pid 2)", report(gauge("c", 1, at=1), counter("d", ([], 1), tag_keys=())))
        table.report("p3", "driver:cc (pid 3)", report(counter("c", ([], 1), tag_keys=())))
    assert values(table) == {"c": {("x",): 3}, "d": {(): 1}}
    assert "metric 'c' from worker:bb (pid 2) (a gauge with tag keys []) is dropped: worker:aa (pid 1) defined it first on this node, as a counter with tag keys ['a']" in caplog.text
    assert "driver:cc (pid 3)" in caplog.text and table.dropped == 2


def test_the_node_bounds_metrics_and_series_and_drops_malformed_ones() -> None:
    table = AppMetricsTable(max_metrics=2, max_series=2)
    table.report("p1", "p1", report(counter("a", (["1"], 1), (["2"], 1), (["3"], 1)), counter("b"), counter("c")))
    assert values(table) == {"a": {("1",): 1, ("2",): 1}, "b": {}}
    table.report("p2", "p2", report(counter("a", (["4"], 1))))
    assert values(table)["a"] == {("1",): 1, ("2",): 1}  # the merged series are bounded too
    bad = [
        MetricReport("x", "summary", "", [], [], []),
        MetricReport("9x", "counter", "", [], [], []),
        MetricReport("h", "histogram", "", [], [2.0, 1.0], []),
        MetricReport("b", "counter", "", ["node_id"], [], []),
    ]
    before = table.dropped
    table.report("p3", "p3", report(*bad, counter("b", (["1", "2"], 1), (["1"], -1), (["1"], math.nan), (["ok"], 2))))
    assert values(table)["b"] == {("ok",): 2} and table.dropped == before + 7


# ---- /metrics -------------------------------------------------------------------------------------


def node_stats(node_id: str, *metrics: AppMetric) -> NodeStats:
    return NodeStats(node_id=node_id, time=1.0, app_metrics=list(metrics))


def scrape(stats: StatsResult) -> dict[str, object]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(app_families(stats, {"n1": "127.0.0.1", "n2": "127.0.0.2"})))  # type: ignore[arg-type]
    return {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}


def test_families_render_under_the_users_names_with_the_node_labels(caplog: pytest.LogCaptureFixture) -> None:
    requests = AppMetric(name="app_requests", kind="counter", description="Requests", tag_keys=["route"],
                         series=[AppSeries(tags=["/"], value=3)])
    latency = AppMetric(name="app_latency", kind="histogram", boundaries=[0.1, 1.0], series=[AppSeries(tags=[], value=2.5, counts=[1, 1, 1])])
    clash = AppMetric(name="app_requests_total", kind="gauge", series=[AppSeries(tags=[], value=1)])
    other_kind = AppMetric(name="app_requests", kind="gauge", tag_keys=["route"], series=[AppSeries(tags=["/"], value=9)])
    with caplog.at_level(logging.WARNING, logger="actorlib.dashboard"):
        parsed = scrape(StatsResult(nodes=[
            node_stats("n1", requests, latency, clash),
            node_stats("n2", msgspec_replace(requests, series=[AppSeries(tags=["/"], value=4)]), other_kind),
        ]))  # fmt: skip
    family = parsed["app_requests"]
    assert family.type == "counter" and family.documentation == "Requests"
    assert {(s.name, s.labels["node_id"], s.labels["node_ip"], s.labels["route"], s.value) for s in family.samples} == {
        ("app_requests_total", "n1", "127.0.0.1", "/", 3.0), ("app_requests_total", "n2", "127.0.0.2", "/", 4.0),
    }  # fmt: skip
    buckets = {s.labels.get("le"): s.value for s in parsed["app_latency"].samples if s.name == "app_latency_bucket"}
    assert buckets == {"0.1": 1.0, "1.0": 2.0, "+Inf": 3.0}
    assert {s.name: s.value for s in parsed["app_latency"].samples if s.name != "app_latency_bucket"} == {"app_latency_count": 3.0, "app_latency_sum": 2.5}
    assert set(parsed) == {"app_requests", "app_latency"}  # the clashing gauge and n2's other definition are left out
    assert "would be exposed as ['app_requests_total']" in caplog.text
    assert "metric 'app_requests' of node n2 (a gauge with tag keys ['route']) is left out of /metrics: node n1 has it as a counter" in caplog.text


def msgspec_replace(metric: AppMetric, **changes: object) -> AppMetric:
    import msgspec

    return msgspec.structs.replace(metric, **changes)

"""The dashboard's pure parts: query paths, logins, the HTTP gate's decisions, latency histograms,
the plots' ring buffer, the query cache and the Prometheus families (no processes, no sockets)."""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import msgspec
import pytest
import trio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.datastructures import Headers

from actorlib._dashboard import QueryCache, Sessions, StatsHistory, cookie_name, families, parse_query, safe_next
from actorlib._dashboard._metrics import _Snapshot
from actorlib._http import Guard, bearer
from actorlib._state import (
    ActorState,
    JobState,
    LatencyHistograms,
    ListResult,
    NodeState,
    NodeStats,
    QueryError,
    StatsResult,
    merge_latency,
)
from actorlib._wire import StateQuery

# ---- /api/state paths -------------------------------------------------------------------------------


class Params(dict):
    def getlist(self, key: str) -> list[str]:
        value = self.get(key)
        return value if isinstance(value, list) else [value] if value is not None else []


def test_state_paths_become_the_queries_the_cli_sends() -> None:
    assert parse_query("tree", Params(node="ab", depth="2")) == StateQuery(req=0, kind="tree", args={"node": "ab", "depth": "2"})
    assert parse_query("stats", Params()).kind == "stats"
    assert parse_query("summary/tasks", Params()).args == {"of": "tasks"}
    query = parse_query("actors", Params(filter=["state=ALIVE", "name!=x"], limit="5", detail="true"))
    assert query.filters == [("state", "=", "ALIVE"), ("name", "!=", "x")] and query.limit == 5 and query.detail
    assert parse_query("nodes/1a2b", Params()).args == {"id": "1a2b"}


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("", {}, "name what to query"),
        ("nodes/a/b", {}, "no such state path"),
        ("nodes", {"limit": "ten"}, "limit must be an integer"),
        ("nodes", {"filter": "oops"}, "bad filter 'oops'"),
    ],
)
def test_bad_state_paths_are_refused_with_the_reason(path: str, params: dict, message: str) -> None:
    with pytest.raises(QueryError, match=message):
        parse_query(path, Params(params))


# ---- logins ----------------------------------------------------------------------------------------------


def test_after_login_only_paths_on_this_server_are_followed() -> None:
    assert safe_next("/tree") == "/tree" and safe_next("/jobs?job=x") == "/jobs?job=x"
    for hostile in ("//evil.example/", "https://evil.example/", "evil", "/\\evil.example", ""):
        assert safe_next(hostile) == "/"


def test_the_cookie_name_carries_the_port_so_clusters_on_one_host_keep_their_logins() -> None:
    assert cookie_name(Headers({"host": "127.0.0.1:8265"})) == "actorlib_session_8265"
    assert cookie_name(Headers({"host": "dash.example"})) == "actorlib_session_80"
    assert cookie_name(Headers({"host": "[::1]"})) == "actorlib_session_80"


def test_sessions_expire_end_and_are_bounded() -> None:
    sessions = Sessions("tok", max_sessions=2)
    first, second, third = sessions.create(), sessions.create(), sessions.create()
    assert not sessions.valid(first) and sessions.valid(second) and sessions.valid(third)  # the oldest was dropped
    sessions.end(second)
    assert not sessions.valid(second)
    assert not Sessions("tok", lifetime=-1).valid(Sessions("tok").create())
    expired = Sessions("tok", lifetime=-1)
    assert not expired.valid(expired.create())
    cookie = sessions.credential
    assert cookie(Headers({"host": "h:1", "cookie": f"actorlib_session_1={third}"})) == "tok"
    assert cookie(Headers({"host": "h:2", "cookie": f"actorlib_session_1={third}"})) is None  # another port's
    assert cookie(Headers({"host": "h:1", "cookie": "actorlib_session_1=forged"})) is None
    assert cookie(Headers({"host": "h:1", "cookie": "\x00garbage;;=="})) is None


# ---- the gate ---------------------------------------------------------------------------------------------


def gate(**kwargs) -> Guard:
    sessions = Sessions("tok")
    kwargs.setdefault("credential_sources", [bearer, sessions.credential])
    guard = Guard(lambda *a: None, "tok", **kwargs)  # type: ignore[arg-type]
    guard.session = sessions.create()  # type: ignore[attr-defined]
    return guard


def ask(guard: Guard, method: str, path: str, **headers: str) -> int | None:
    scope = {"type": "http", "method": method, "path": path}
    refusal = guard.refusal(scope, Headers({"host": "h:1", **headers}))
    return None if refusal is None else refusal[0]


def test_a_cookie_changes_state_only_with_this_servers_origin() -> None:
    guard = gate()
    cookie = f"actorlib_session_1={guard.session}"  # type: ignore[attr-defined]
    assert ask(guard, "GET", "/api/state/nodes", cookie=cookie) is None
    assert ask(guard, "POST", "/api/jobs/", cookie=cookie) == 403  # no Origin: a cookie alone is not enough
    assert ask(guard, "POST", "/api/jobs/", cookie=cookie, origin="http://other:1") == 403
    assert ask(guard, "POST", "/api/jobs/", cookie=cookie, origin="http://h:1") is None
    assert ask(guard, "POST", "/api/jobs/", authorization="Bearer tok") is None  # scripts send no Origin


def test_public_routes_and_scoped_tokens() -> None:
    guard = gate(public=[("POST", "/login")], scoped_tokens={"metrics": ["/metrics"]})
    assert ask(guard, "POST", "/login") is None
    assert ask(guard, "POST", "/login", origin="http://evil:1") == 403
    assert ask(guard, "GET", "/login") == 401
    assert ask(guard, "GET", "/metrics", authorization="Bearer metrics") is None
    assert ask(guard, "GET", "/api/state/nodes", authorization="Bearer metrics") == 403
    assert ask(guard, "POST", "/metrics", authorization="Bearer metrics") == 403


# ---- numbers ------------------------------------------------------------------------------------------------


def test_latency_histograms_bucket_like_prometheus_and_bound_their_series() -> None:
    histograms = LatencyHistograms(bounds=(0.1, 1.0), max_series=2)
    for seconds in (0.05, 0.1, 0.5, 2.0):
        histograms.add("NORMAL_TASK", "f", seconds)
    histograms.add("NORMAL_TASK", "g", 0.2)
    histograms.add("ACTOR_TASK", "h", 0.2)  # a third series: counted under (other)
    series = {(s.type, s.name): s for s in histograms.snapshot()}
    assert series[("NORMAL_TASK", "f")].counts == [2, 1, 1] and series[("NORMAL_TASK", "f")].count == 4
    assert math.isclose(series[("NORMAL_TASK", "f")].sum, 2.65)
    assert set(series) == {("NORMAL_TASK", "f"), ("NORMAL_TASK", "g"), ("ACTOR_TASK", "(other)")}


def stats(node: str, at: float, finished: int, failed: int = 0, **extra) -> NodeStats:
    return NodeStats(node_id=node, time=at, tasks_finished=finished, tasks_failed=failed, **extra)


def test_the_ring_buffer_turns_counters_into_rates_and_survives_node_restarts() -> None:
    history = StatsHistory(query=None, length=3)  # type: ignore[arg-type]
    history.add(StatsResult(nodes=[stats("a", 10.0, 100)]))
    history.add(StatsResult(nodes=[stats("a", 12.0, 120, 2), stats("b", 12.0, 5)]))
    history.add(StatsResult(nodes=[stats("a", 14.0, 4)]))  # a restarted: its counters began again
    history.add(StatsResult(nodes=[stats("a", 16.0, 10)]))
    snapshot = history.snapshot()
    assert snapshot.times == [12.0, 14.0, 16.0]  # bounded: the oldest sample went
    rates = [(p.finished_rate, p.failed_rate) if p else None for p in snapshot.nodes["a"]]
    assert rates == [(10.0, 1.0), (2.0, 0.0), (3.0, 0.0)]
    assert snapshot.nodes["b"][0] is not None and snapshot.nodes["b"][1:] == [None, None]
    assert msgspec.json.decode(msgspec.json.encode(snapshot))["columns"][0] == "cpu"


async def test_the_query_cache_asks_once_for_every_watcher(autojump_clock) -> None:
    asked = []

    async def answer(query: StateQuery) -> ListResult:
        asked.append(query.kind)
        await trio.sleep(0.1)
        return ListResult(kind=query.kind, items=[], total=0)

    cache = QueryCache(answer, ttl=0.5)
    query = StateQuery(req=0, kind="nodes")
    async with trio.open_nursery() as nursery:
        for _ in range(5):
            nursery.start_soon(cache.get, query)
    assert asked == ["nodes"]
    await trio.sleep(1)
    assert (await cache.get(query))[0] == 200 and asked == ["nodes", "nodes"]
    missing = StateQuery(req=0, kind="nodes", args={"id": "ff"})
    assert (await cache.get(missing))[0] == 404


def test_metric_families_render_and_parse() -> None:
    latency = LatencyHistograms(bounds=(0.1, 1.0))
    for seconds in (0.05, 0.5, 5.0):
        latency.add("NORMAL_TASK", "f", seconds)
    node = stats("n1", 1.0, 3, 1, workers={"IDLE": 2, "ACTOR": 1}, store_used=10, store_objects=2,
                 latency_bounds=[0.1, 1.0], latency=latency.snapshot())  # fmt: skip
    nodes = [
        NodeState(node_id="n1", node_ip="127.0.0.1", state="ALIVE", is_head_node=True,
                  resources_total={"CPU": 4.0}, resources_available={"CPU": 1.5}),
        NodeState(node_id="n2", node_ip="127.0.0.2", state="DEAD", is_head_node=False),
    ]  # fmt: skip
    actors = [ActorState(actor_id="a", class_name="C", state="ALIVE", num_restarts=2),
              ActorState(actor_id="b", class_name="C", state="DEAD", num_restarts=1)]  # fmt: skip
    jobs = [JobState(job_id="1", type="DRIVER", status="RUNNING"), JobState(job_id="", type="SUBMISSION", status="FAILED")]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families(nodes, actors, jobs, StatsResult(nodes=[node]))))  # type: ignore[arg-type]
    parsed = {f.name: f for f in text_string_to_metric_families(generate_latest(registry).decode())}

    def value(name: str, sample: str | None = None, **labels: str) -> float:
        (match,) = [s.value for s in parsed[name].samples if (sample is None or s.name == sample) and labels.items() <= s.labels.items()]
        return match

    assert value("actorlib_nodes", state="ALIVE") == 1 and value("actorlib_nodes", state="DEAD") == 1
    assert value("actorlib_node_resource_used", node_id="n1", resource="CPU") == 2.5
    assert value("actorlib_tasks", node_id="n1", state="FAILED") == 1
    assert value("actorlib_actor_restarts", class_name="C") == 3
    assert value("actorlib_jobs", type="SUBMISSION", status="FAILED") == 1
    assert value("actorlib_worker_processes", state="ACTOR") == 1
    assert value("actorlib_object_store_used_bytes") == 10
    histogram = "actorlib_call_duration_seconds"
    assert value(histogram, f"{histogram}_bucket", le="0.1") == 1 and value(histogram, f"{histogram}_bucket", le="1.0") == 2
    assert value(histogram, f"{histogram}_bucket", le="+Inf") == 3 and value(histogram, f"{histogram}_count") == 3
    assert merge_latency([node, node])[("NORMAL_TASK", "f")].count == 6


# ---- packaging ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_built_wheel_ships_the_dashboards_static_files(tmp_path: Path) -> None:
    """A non-editable install finds its pages: build the wheel, unpack it, load the assets from there."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[3]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(root)],
        check=True, capture_output=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("actorlib-*.whl")
    static = {p.name for p in (root / "actorlib" / "_dashboard" / "static").iterdir()}
    assert static >= {"index.html", "login.html", "app.js", "style.css"}
    installed = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(installed)
    code = "import actorlib, actorlib._dashboard._pages as p; a = p.Assets(); print(actorlib.__file__, sorted(a.files))"
    out = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"},
                         check=True, capture_output=True, text=True, timeout=60, cwd=tmp_path).stdout  # fmt: skip
    assert out.startswith(str(installed)) and all(repr(name) in out for name in static)

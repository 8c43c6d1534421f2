"""The dashboard's HTTP face on a real 3-node cluster: auth everywhere, the login cookie and CSRF,
the JSON API being the state API, live Server-Sent Events, and /metrics matching the cluster."""

from __future__ import annotations

import os
import signal
import time

import httpx
import msgspec
import pytest
from httpx_ws import WebSocketUpgradeError, connect_ws
from prometheus_client.parser import text_string_to_metric_families

import actorlib
from actorlib.util import state
from actorlib.util.state import ClusterTree, ListResult, NodeState, Summary

from ..integration.conftest import poll
from .conftest import Dash

pytestmark = pytest.mark.slow
PAGES = ["/", "/nodes", "/actors", "/jobs", "/tasks", "/placement-groups", "/tree"]
APIS = [
    "/api/state/nodes", "/api/state/tree", "/api/state/summary/tasks", "/api/state/stats", "/api/watch/nodes",
    "/api/history", "/metrics", "/api/jobs/", "/api/version", "/static/app.js", "/static/style.css", "/login",
]  # fmt: skip


def test_without_credentials_every_page_and_api_answers_401(dash: Dash) -> None:
    with dash.client() as anonymous:
        for path in PAGES + APIS:
            reply = anonymous.get(path)
            assert reply.status_code == 401, (path, reply.status_code, reply.text[:200])
        for path in ("/api/jobs/", "/logout", "/api/jobs/x/stop"):
            assert anonymous.post(path, json={"entrypoint": "true"}).status_code == 401, path
        page = anonymous.get("/tree", headers={"accept": "text/html"})  # a browser gets the login form
        assert page.status_code == 401 and 'name="token"' in page.text and 'value="/tree"' in page.text
        assert dash.token not in page.text and page.headers["cache-control"] == "no-store"
    with pytest.raises(WebSocketUpgradeError) as refused, connect_ws(f"{dash.url}/api/jobs/x/logs/tail", httpx.Client()):
        pass
    assert refused.value.response.status_code == 401
    with dash.client("0" * 64) as wrong:
        for path in PAGES + APIS:
            assert wrong.get(path).status_code == 403, path


def test_the_metrics_token_reads_metrics_and_nothing_else(dash: Dash) -> None:
    with dash.client(dash.metrics_token) as scraper:
        assert scraper.get("/metrics").status_code == 200
        assert scraper.get("/api/state/nodes").status_code == 403
        assert scraper.get("/").status_code == 403
        assert scraper.post("/api/jobs/", json={"entrypoint": "true"}).status_code == 403
    assert oct(os.stat(os.path.join(os.path.dirname(dash.token_file), "metrics_token")).st_mode & 0o777) == "0o600"


def login(dash: Dash, client: httpx.Client, token: str, next_: str = "/") -> httpx.Response:
    return client.post("/login", data={"token": token, "next": next_}, headers={"origin": dash.url})


def test_login_sets_a_strict_httponly_cookie_and_state_changes_need_this_origin(dash: Dash) -> None:
    port = dash.url.rsplit(":", 1)[1]
    with dash.client() as browser:
        refused = login(dash, browser, "not-the-token")
        assert refused.status_code == 401 and "not the token of this cluster" in refused.text and not browser.cookies
        assert login(dash, browser, dash.token, "//evil.example/x").headers["location"] == "/"  # never off-site
        reply = login(dash, browser, dash.token, "/tree")
        assert reply.status_code == 303 and reply.headers["location"] == "/tree"
        cookie = reply.headers["set-cookie"]
        assert cookie.startswith(f"actorlib_session_{port}=") and dash.token not in cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/" in cookie
        assert browser.get("/api/state/nodes").status_code == 200 and browser.get("/tree").status_code == 200
        job = {"entrypoint": "true"}
        assert browser.post("/api/jobs/", json=job).status_code == 403  # a cookie alone: no Origin, refused
        assert browser.post("/api/jobs/", json=job, headers={"origin": "http://127.0.0.1:1"}).status_code == 403
        assert browser.post("/api/jobs/", json=job, headers={"origin": dash.url}).status_code == 200
        session = browser.cookies[f"actorlib_session_{port}"]
        assert browser.post("/logout", headers={"origin": dash.url}).status_code == 303
        assert browser.get("/api/state/nodes").status_code == 401
    with dash.client() as replay:  # the old cookie is dead on the server, not only in that browser
        replay.cookies.set(f"actorlib_session_{port}", session)
        assert replay.get("/api/state/nodes").status_code == 401
    with dash.client() as foreign:
        assert foreign.post("/login", data={"token": dash.token}, headers={"origin": "http://evil.example"}).status_code == 403


def test_the_json_api_serves_the_state_api_structs(dash: Dash) -> None:
    nodes = msgspec.json.decode(dash.get("/api/state/nodes").content, type=ListResult[NodeState])
    assert sorted(n.node_id for n in nodes.items) == sorted(n.node_id for n in state.list_nodes())
    assert {n.node_ip for n in nodes.items} == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}
    tree = msgspec.json.decode(dash.get("/api/state/tree", params={"depth": "1"}).content, type=ClusterTree)
    assert len(tree.nodes) == 3 and all(t.root is not None for t in tree.nodes)
    one = dash.get(f"/api/state/nodes/{nodes.items[0].node_id[:10]}")
    assert one.status_code == 200 and one.json()["node_id"] == nodes.items[0].node_id
    assert dash.get("/api/state/actors/ffffffff").status_code == 404
    alive = dash.get("/api/state/nodes", params=[("filter", "node_ip=127.0.0.2"), ("limit", "5")]).json()
    assert [n["node_ip"] for n in alive["items"]] == ["127.0.0.2"]
    assert msgspec.json.decode(dash.get("/api/state/summary/actors").content, type=Summary).kind == "actors"
    for path, message in [
        ("/api/state/bogus", "unknown kind 'bogus'"), ("/api/state/nodes?limit=x", "limit must be an integer"),
        ("/api/state/nodes?filter=nope", "bad filter 'nope'"), ("/api/state/nodes?filter=color=red", "no field 'color'"),
        ("/api/watch/nodes?interval=0", "interval must be between"),
    ]:  # fmt: skip
        reply = dash.get(path)
        assert reply.status_code == 400 and message in reply.text, (path, reply.text)


@actorlib.remote
class Watched:
    def ping(self) -> int:
        return os.getpid()


def test_watch_sends_a_new_event_when_the_answer_changes(dash: Dash) -> None:
    deadline = time.monotonic() + 30
    with dash.client(dash.token) as client, client.stream("GET", "/api/watch/actors?interval=0.5&limit=1000") as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        lines = events.iter_lines()
        first = next(line for line in lines if line.startswith("data: "))
        actor = Watched.remote()
        actor_id = actorlib.get(actor.ping.remote()) and actor._actor_id.hex()
        assert actor_id not in first
        for line in lines:
            if line.startswith("data: ") and actor_id in line and '"ALIVE"' in line:
                break
            assert time.monotonic() < deadline, "the new actor never appeared in the stream"
    actorlib.kill(actor)


# ---- /metrics ---------------------------------------------------------------------------------------


@actorlib.remote
def dash_square(x: int) -> int:
    return x * x


@actorlib.remote
def dash_fail() -> None:
    raise ValueError("boom from dash_fail")


@actorlib.remote(max_restarts=2, max_task_retries=2)
class Tally:
    def pid(self) -> int:
        return os.getpid()


def scrape(dash: Dash) -> dict[str, list]:
    with dash.client(dash.metrics_token) as scraper:
        reply = scraper.get("/metrics")
    assert reply.status_code == 200 and reply.headers["content-type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(reply.text)}


def total(samples: list, sample: str | None = None, **labels: str) -> float:
    """The sum of the samples (named ``sample``, if given) whose labels include ``labels``."""
    return sum(s.value for s in samples if (sample is None or s.name == sample) and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_parse_and_match_the_cluster_state(dash: Dash) -> None:
    assert actorlib.get([dash_square.remote(i) for i in range(20)]) == [i * i for i in range(20)]
    for _ in range(3):
        with pytest.raises(ValueError):
            actorlib.get(dash_fail.remote())
    tally = Tally.remote()
    os.kill(actorlib.get(tally.pid.remote()), signal.SIGKILL)
    actorlib.get(tally.pid.remote(), timeout=60)  # restarted
    ref = actorlib.put(b"x" * (2 << 20))
    # workers report what they ran about once a second
    square_name = poll(lambda: next((n for n in state.summarize_tasks().by_name if n.endswith("dash_square")), None))

    def settled() -> dict | None:
        metrics = scrape(dash)
        calls = metrics["actorlib_call_duration_seconds"]
        if total(calls, "actorlib_call_duration_seconds_count", name=square_name) != 20:
            return None
        summary = state.summarize_tasks()
        tasks = metrics["actorlib_tasks"]
        if total(tasks, state="FINISHED") != summary.by_state.get("FINISHED") or total(tasks, state="FAILED") != summary.by_state.get("FAILED"):
            return None
        if summary.by_state.get("FAILED", 0) < 3:  # each worker reports its calls about once a second
            return None
        objects = state.list_objects(limit=10_000)
        if total(metrics["actorlib_object_store_objects"]) != len(objects):
            return None
        actors = state.list_actors(limit=10_000)
        if total(metrics["actorlib_worker_processes"], state="ACTOR") != sum(a.state == "ALIVE" for a in actors):
            return None
        return metrics

    metrics = poll(settled, timeout=30)
    assert total(metrics["actorlib_nodes"], state="ALIVE") == 3
    for node in state.list_nodes():
        cpu = total(metrics["actorlib_node_resource_total"], node_id=node.node_id, resource="CPU")
        assert cpu == node.resources_total["CPU"]
    assert total(metrics["actorlib_tasks"], state="FAILED") >= 3
    fail_name = square_name.replace("dash_square", "dash_fail")
    assert total(metrics["actorlib_call_duration_seconds"], "actorlib_call_duration_seconds_count", name=fail_name) == 3
    buckets = [s for s in metrics["actorlib_call_duration_seconds"] if s.name.endswith("_bucket") and s.labels["name"] == square_name]
    assert buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == 20
    assert [b.value for b in buckets] == sorted(b.value for b in buckets)  # cumulative
    assert total(metrics["actorlib_actor_restarts"], class_name="Tally") == state.get_actor(tally._actor_id.hex()).num_restarts == 1
    stored = sum(o.object_size for o in state.list_objects(limit=10_000))
    assert total(metrics["actorlib_object_store_used_bytes"]) >= stored >= 2 << 20
    sent = {s.labels["node_id"]: s.value for s in metrics["actorlib_object_store_sent_bytes"]}
    assert set(sent) == {node.node_id for node in state.list_nodes()} and min(sent.values()) >= 0
    jobs = state.list_jobs(limit=10_000)
    for job in jobs:
        assert total(metrics["actorlib_jobs"], type=job.type, status=job.status) == sum(
            (j.type, j.status) == (job.type, job.status) for j in jobs
        )
    failed = state.list_tasks(filters=[("state", "=", "FAILED"), ("name", "=", fail_name)], limit=10)
    assert failed and "boom from dash_fail" in failed[0].error_message
    assert "Traceback" in failed[0].traceback and 'raise ValueError("boom from dash_fail")' in failed[0].traceback
    actorlib.kill(tally)
    del ref

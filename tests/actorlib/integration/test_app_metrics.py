"""actorlib.util.metrics on a real cluster: tasks, actors (sync and async) and the driver record;
the head's /metrics shows it; an actor that ends leaves its counts and takes its gauge with it."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

import actorlib
from actorlib.util.metrics import Counter, Gauge, Histogram

from .conftest import poll

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scraper(cluster) -> callable:
    url = cluster.context.dashboard_url
    token = (Path(cluster.context["session_dir"]) / "token").read_text().strip()

    def scrape() -> Samples:
        text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=30).text
        return {
            (s.name, frozenset((k, v) for k, v in s.labels.items() if k not in ("node_id", "node_ip"))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name.startswith("it_")
        }

    return scrape


def wait_for(scrape, expected: Samples, absent: tuple = (), timeout: float = 30.0) -> Samples:
    """Poll /metrics until every expected sample has its value and no ``absent`` one is there."""
    seen: list[Samples] = []

    def check() -> bool:
        samples = scrape()
        seen.append(samples)
        return all(samples.get(key) == value for key, value in expected.items()) and not any(key in samples for key in absent)

    try:
        poll(check, timeout=timeout, interval=0.1)
    except AssertionError:
        raise AssertionError(f"/metrics never showed {expected} (without {absent}); last: {seen[-1] if seen else None}") from None
    return seen[-1]


def key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return (name, frozenset(labels.items()))


@actorlib.remote
def handle(route: str, seconds: float) -> None:
    Counter("it_requests", "Requests", tag_keys=("route",)).inc(tags={"route": route})
    Histogram("it_latency", boundaries=[0.1, 1.0], tag_keys=("route",)).observe(seconds, tags={"route": route})


class _Queue:
    def __init__(self, name: str) -> None:
        self.depth = Gauge("it_queue_depth", "Items waiting", tag_keys=("queue",)).set_default_tags({"queue": name})
        self.served = Counter("it_requests", "Requests", tag_keys=("route",)).set_default_tags({"route": name})

    def push(self, n: int) -> int:
        self.depth.set(n)
        self.served.inc(n)
        return n


Queue = actorlib.remote(_Queue)


@actorlib.remote
class AsyncQueue(_Queue):
    async def push_async(self, n: int) -> int:  # on the actor's asyncio loop
        return self.push(n)


@actorlib.remote
class TrioQueue(_Queue):
    __actorlib_event_loop__ = "trio"

    async def push_async(self, n: int) -> int:  # on the actor's Trio loop
        return self.push(n)


def test_tasks_actors_and_the_driver_show_up_on_metrics_and_ended_actors_keep_their_counts(fresh_cluster, monkeypatch) -> None:
    monkeypatch.setenv("ACTORLIB_METRICS_REPORT_PERIOD", "0.2")
    cluster = fresh_cluster(num_cpus=2, include_dashboard=True, dashboard_port=0)
    scrape = scraper(cluster)
    actorlib.get([handle.remote("/a", 0.05) for _ in range(3)] + [handle.remote("/b", 5.0)])
    sync, async_ = Queue.remote("sync"), AsyncQueue.options(max_concurrency=4).remote("async")
    trio_ = TrioQueue.remote("trio")
    assert actorlib.get([sync.push.remote(4), async_.push_async.remote(6), trio_.push_async.remote(8)]) == [4, 6, 8]
    Counter("it_requests", "Requests", tag_keys=("route",)).inc(2, tags={"route": "driver"})

    expected = {
        key("it_requests_total", route="/a"): 3, key("it_requests_total", route="/b"): 1,
        key("it_requests_total", route="sync"): 4, key("it_requests_total", route="async"): 6,
        key("it_requests_total", route="driver"): 2,
        key("it_latency_bucket", route="/a", le="0.1"): 3, key("it_latency_bucket", route="/b", le="1.0"): 0,
        key("it_latency_bucket", route="/b", le="+Inf"): 1, key("it_latency_count", route="/a"): 3,
        key("it_queue_depth", queue="sync"): 4, key("it_queue_depth", queue="async"): 6,
        key("it_requests_total", route="trio"): 8, key("it_queue_depth", queue="trio"): 8,
    }  # fmt: skip
    samples = wait_for(scrape, expected)
    assert samples[key("it_latency_sum", route="/b")] == pytest.approx(5.0)

    # The sync actor ends: its gauge goes, its count stays in its node's total; the other's stay.
    sync.__ray_terminate__.remote()
    gone = key("it_queue_depth", queue="sync")
    del expected[gone]
    wait_for(scrape, expected, absent=(gone,))
    assert actorlib.get(async_.push_async.remote(1)) == 1
    wait_for(scrape, {**expected, key("it_queue_depth", queue="async"): 1, key("it_requests_total", route="async"): 7}, absent=(gone,))


@actorlib.remote
class Bumper:
    def bump(self) -> None:
        Counter("it_bumps").inc()


def test_an_ending_actor_reports_its_last_values(fresh_cluster, monkeypatch) -> None:
    # Reports at most once a minute: the first bump is reported at once, the second only as
    # the actor stops (the next periodic report would come long after the actor is gone).
    monkeypatch.setenv("ACTORLIB_METRICS_REPORT_PERIOD", "60")
    cluster = fresh_cluster(num_cpus=1, include_dashboard=True, dashboard_port=0)
    scrape = scraper(cluster)
    bumper = Bumper.remote()
    actorlib.get(bumper.bump.remote())
    wait_for(scrape, {key("it_bumps_total"): 1})
    actorlib.get(bumper.bump.remote())
    started = time.monotonic()
    bumper.__ray_terminate__.remote()
    wait_for(scrape, {key("it_bumps_total"): 2}, timeout=30)
    assert time.monotonic() - started < 60  # not the periodic report

"""``GET /metrics``: the cluster in Prometheus' text format, built from the state API at scrape time.

No global mutable metrics: each scrape asks the state API (nodes, actors, jobs,
and each node's ``stats``, which carries the application metrics of its processes too),
turns the answers into metric families (:func:`families`, pure) and renders them with
``prometheus_client``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import Response

from .._state import ActorState, JobState, NodeState, StatsResult, merge_latency
from .._state._query import MAX_LIMIT
from .._wire import StateQuery
from ._app_families import app_families, cumulative_buckets

Answer = Callable[[StateQuery], Awaitable[Any]]


def families(nodes: list[NodeState], actors: list[ActorState], jobs: list[JobState], stats: StatsResult) -> list[Metric]:
    """Every metric family of one scrape (pure)."""
    return [
        *_node_families(nodes, stats),
        *_work_families(actors, jobs, stats),
        *_latency_families(stats),
        *app_families(stats, {node.node_id: node.node_ip for node in nodes}),  # actorlib.util.metrics
    ]


def _gauge(name: str, doc: str, labels: list[str], rows: Iterable[tuple[list[str], float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


def _count(keys: Iterable[tuple[str, ...]]) -> list[tuple[list[str], float]]:
    counts: dict[tuple[str, ...], int] = {}
    for key in keys:
        counts[key] = counts.get(key, 0) + 1
    return [(list(key), float(n)) for key, n in sorted(counts.items())]


def _node_families(nodes: list[NodeState], stats: StatsResult) -> list[Metric]:
    alive = {node.node_id: node for node in nodes if node.state == "ALIVE"}
    ip = {node.node_id: node.node_ip for node in nodes}
    resources = [(n, r, total, total - n.resources_available.get(r, 0.0)) for n in alive.values() for r, total in sorted(n.resources_total.items())]
    numbers = [(node, [node.node_id, ip.get(node.node_id, "")]) for node in stats.nodes]
    per_node = [
        ("actorlib_node_cpu_percent", "The machine's CPU use (0-100) as the node sees it", lambda s: s.cpu_percent),
        ("actorlib_node_memory_used_bytes", "The machine's memory in use", lambda s: s.memory_used),
        ("actorlib_node_memory_total_bytes", "The machine's memory", lambda s: s.memory_total),
        ("actorlib_node_process_cpu_percent", "CPU of the node's processes (100 = one core)", lambda s: s.process_cpu_percent),
        ("actorlib_node_process_rss_bytes", "Resident memory of the node's processes", lambda s: s.process_rss),
        ("actorlib_object_store_used_bytes", "Bytes held in the node's object store", lambda s: s.store_used),
        ("actorlib_object_store_capacity_bytes", "The node's object store capacity", lambda s: s.store_capacity),
        ("actorlib_object_store_objects", "Objects held in the node's object store", lambda s: s.store_objects),
        ("actorlib_object_store_sent_bytes", "Object bytes the node's store sent to other nodes since it started", lambda s: s.store_bytes_sent),
    ]
    return [
        _gauge("actorlib_nodes", "Nodes the head knows, by state", ["state"], _count((n.state,) for n in nodes)),
        _gauge("actorlib_node_resource_total", "A live node's total of a resource", ["node_id", "node_ip", "resource"],
               (([n.node_id, n.node_ip, r], total) for n, r, total, _ in resources)),
        _gauge("actorlib_node_resource_used", "How much of a resource is reserved on a live node", ["node_id", "node_ip", "resource"],
               (([n.node_id, n.node_ip, r], used) for n, r, _, used in resources)),
        *(_gauge(name, doc, ["node_id", "node_ip"], ((labels, float(get(s))) for s, labels in numbers)) for name, doc, get in per_node),
        _gauge("actorlib_worker_processes", "Worker processes by state (task workers STARTING/IDLE/LEASED, ACTOR)",
               ["node_id", "node_ip", "state"], (([*labels, state], float(n)) for s, labels in numbers for state, n in sorted(s.workers.items()))),
        _gauge("actorlib_stats_missing_nodes", "Live nodes that did not answer this scrape's stats query", [],
               [([], float(len(stats.partial)))]),
    ]  # fmt: skip


def _work_families(actors: list[ActorState], jobs: list[JobState], stats: StatsResult) -> list[Metric]:
    tasks = []
    for node in stats.nodes:
        for state, value in (("RUNNING", node.tasks_running), ("FINISHED", node.tasks_finished), ("FAILED", node.tasks_failed)):
            tasks.append(([node.node_id, state], float(value)))
    restarts: dict[str, int] = {}
    for actor in actors:
        restarts[actor.class_name] = restarts.get(actor.class_name, 0) + actor.num_restarts
    return [
        _gauge("actorlib_tasks", "Tasks and actor calls by state: RUNNING now; FINISHED and FAILED since the node started",
               ["node_id", "state"], tasks),
        _gauge("actorlib_actors", "Actors by state", ["state"], _count((a.state,) for a in actors)),
        _gauge("actorlib_actor_restarts", "Restarts of the actors the head knows, by class", ["class_name"],
               (([name], float(n)) for name, n in sorted(restarts.items()))),
        _gauge("actorlib_jobs", "Jobs by type (DRIVER, SUBMISSION) and status", ["type", "status"],
               _count((j.type, j.status) for j in jobs)),
    ]  # fmt: skip


def _latency_families(stats: StatsResult) -> list[Metric]:
    family = HistogramMetricFamily(
        "actorlib_call_duration_seconds", "How long tasks and actor calls ran, by type and function (since each node started)",
        labels=["type", "name"],
    )  # fmt: skip
    bounds = stats.nodes[0].latency_bounds if stats.nodes else []
    for (type_, name), series in sorted(merge_latency(stats.nodes).items()):
        family.add_metric([type_, name], cumulative_buckets(bounds, series.counts), series.sum)
    return [family]


class _Snapshot:
    """A collector that yields the families of one scrape."""

    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


async def scrape(answer: Answer) -> bytes:
    """The text exposition of the cluster now."""

    async def ask(kind: str) -> Any:
        return await answer(StateQuery(req=0, kind=kind, limit=MAX_LIMIT))

    nodes, actors, jobs = await ask("nodes"), await ask("actors"), await ask("jobs")
    stats = await ask("stats")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(families(nodes.items, actors.items, jobs.items, stats)))  # type: ignore[arg-type]
    return generate_latest(registry)


def metrics_route(answer: Answer) -> Callable[[Request], Awaitable[Response]]:
    async def metrics(request: Request) -> Response:
        return Response(await scrape(answer), media_type=CONTENT_TYPE_LATEST)

    return metrics

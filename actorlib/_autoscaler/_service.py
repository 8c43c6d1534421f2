"""The autoscaler: a supervised child of the head that launches and stops worker nodes.

Every tick it reads the head's view (nodes, their idle time and demands, actors and placement
groups waiting, ``request_resources()``), asks the pure policy what to do, and does it through
the node provider: launches in the background (a failed one is retried after a backoff), drains
idle nodes before stopping them, and publishes what it does for ``actorlib status``.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import trio

import supervisors

from .. import _ids
from .._node import _resources as res
from .._placement import is_group_resource
from .._wire import AutoscalerView, LaunchView, is_unix, parts
from . import _policy as policy
from ._config import CLUSTER_LABEL, INSTANCE_LABEL, TYPE_LABEL, ClusterConfig, load_config
from ._providers import LaunchError, NodeProvider, Placement, make_provider

log = logging.getLogger("actorlib.autoscaler")

TICK = 0.5  # seconds between decisions (a node heartbeats as often)
RECENT_FAILURES = 10
IGNORED = ("object_store_memory",)


@dataclass
class _Launch:
    instance_id: str
    node_type: str
    started: float  # trio time
    wall: float  # wall-clock time, for status
    created: bool = False  # the provider finished starting it; it has yet to join


class Autoscaler:
    """Scales the head's cluster within ``config``'s bounds through ``provider``."""

    def __init__(
        self, config: ClusterConfig, provider: NodeProvider, head: Any, *, rand: Callable[[], float] = random.random
    ) -> None:
        self.config = config
        self.provider = provider
        self.head = head  # the HeadService: registry, actors, groups, requested
        self.rand = rand
        self.limits = policy.Limits(
            types={
                name: policy.NodeType(name, dict(t.resources), t.min_workers, t.max_workers)
                for name, t in config.worker_types.items()
            },
            max_workers=config.max_workers, idle_timeout_s=config.idle_timeout_s, cooldown_s=config.cooldown_s,
            drain_timeout_s=config.drain_timeout_s,
        )  # fmt: skip
        self.backoff = supervisors.Backoff(initial=config.launch_backoff.initial_s, max=config.launch_backoff.max_s)
        self.launching: dict[str, _Launch] = {}
        self.failed: deque[LaunchView] = deque(maxlen=RECENT_FAILURES)
        self.retry: dict[str, tuple[int, float]] = {}  # node type -> (failures in a row, next try at)
        self.terminating: dict[str, str] = {}  # instance id -> node type
        self.idle_since: dict[bytes, float] = {}
        self.drain_started: dict[bytes, float] = {}
        self.last_scale_up = -math.inf
        self._wanted: tuple[float, dict[str, int]] | None = None  # (when, launches) a view asked for
        self.infeasible: list[dict[str, float]] = []
        self._names = itertools.count(1)
        self._nursery: trio.Nursery | None = None

    # ---- running -------------------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        head = self.head
        head.registry.scalable = [self._offer(name) for name, t in self.limits.types.items() if t.max_workers > 0]
        head.actors.scalable = self._scalable
        head.autoscaler_view = self.view
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._adopt()
                task_status.started()
                while True:
                    try:
                        self.tick()
                    except Exception:  # one bad tick must not stop scaling (nor restart-loop the head)
                        log.exception("autoscaler: a decision failed")
                    await trio.sleep(TICK)
        finally:
            head.registry.scalable = []
            head.actors.scalable = None
            head.autoscaler_view = lambda: None

    async def _adopt(self) -> None:
        """After a restart (of this service or the head): instances that exist but have not
        joined are launches in flight; they join, or time out and are stopped."""
        try:
            instances = await self.provider.list()
        except Exception as exc:  # the provider is unreachable now: start empty
            log.warning("autoscaler: could not list the provider's instances: %s", exc)
            return
        joined = {labels.get(INSTANCE_LABEL) for labels in (n.view().labels for n in self.head.registry.nodes())}
        now = trio.current_time()
        for instance in instances:
            if instance.instance_id and instance.instance_id not in joined and instance.node_type in self.limits.types:
                self.launching[instance.instance_id] = _Launch(instance.instance_id, instance.node_type, now, time.time(), True)

    def tick(self) -> None:
        """One decision: read the cluster, plan, act (launches and stops run in the background)."""
        now = trio.current_time()
        self.head.actors.place_waiting()
        nodes = self._nodes(now)
        self._follow_launches(now, nodes)
        inputs = policy.Inputs(
            demands=self._demands(),
            nodes=[node for node, _instance, _remote in nodes],
            requested=[_plain(b) for b in self.head.requested],
            launching=_count(launch.node_type for launch in self.launching.values()),
            terminating=_count(self.terminating.values()),
            backing_off=frozenset(t for t, (_, at) in self.retry.items() if at > now),
            since_scale_up=now - self.last_scale_up,
        )  # fmt: skip
        decision = policy.plan(inputs, self.limits)
        self.infeasible = decision.infeasible
        by_id = {node.node_id: (instance, remote) for node, instance, remote in nodes}
        types = {node.node_id: node.node_type for node, _instance, _remote in nodes}
        for node_type, count in self._confirmed(decision.launch, now).items():
            for _ in range(count):
                self._launch(node_type, now)
            self.last_scale_up = now
        for node_id in decision.undrain:
            by_id[node_id][1].drain(False)
            self.drain_started.pop(node_id, None)
            self.idle_since.pop(node_id, None)
        for node_id in decision.drain:
            log.info("autoscaler: draining idle node %s", _ids.short(node_id))
            by_id[node_id][1].drain(True, f"idle for {self.config.idle_timeout_s:g}s")
            self.drain_started[node_id] = now
        for node_id in decision.terminate:
            instance, _remote = by_id[node_id]
            self._stop(instance, types[node_id], node_id)

    def _confirmed(self, launch: dict[str, int], now: float) -> dict[str, int]:
        """The launches both this view and the one before ask for, the one before no newer than
        every node's last report (so none of those is older than it was).

        Each node reports its queue and free room in its own heartbeat, so one view may hold a
        node's old report beside another's new one: requests that moved from the first to the
        second (spillback, rebalance) counted both as waiting there and as using the room here.
        Launching on such a view started a node nothing needed. Seen again once every node has
        reported since, demand is real. With no node of its own process (just the head's), a
        view cannot be out of step with itself, and launches go at once."""
        if not launch:
            self._wanted = None
            return {}
        nodes = self.head.registry.remote_nodes()
        if not nodes:
            self._wanted = None
            return launch
        if self._wanted is None or any(node.last_beat <= self._wanted[0] for node in nodes):
            if self._wanted is None:
                self._wanted = (now, launch)
            return {}
        _, before = self._wanted
        self._wanted = None
        return {name: min(count, before[name]) for name, count in launch.items() if name in before}

    # ---- what the head knows ------------------------------------------------------------------

    def _nodes(self, now: float) -> list[tuple[policy.Node, str, Any]]:
        """Live nodes for the policy, with their instance ids and head-side handles."""
        result = []
        live: set[bytes] = set()
        for remote in self.head.registry.nodes():
            view = remote.view()
            labels = view.labels
            instance = labels.get(INSTANCE_LABEL, "")
            if instance in self.terminating:
                continue
            ours = labels.get(CLUSTER_LABEL) == self.config.cluster_name and labels.get(TYPE_LABEL) in self.limits.types
            total = {k: v for k, v in view.total.items() if k not in IGNORED and not is_group_resource(k)}
            available = {k: v for k, v in view.available.items() if k in total}
            idle = view.busy == 0 and not view.demands and res.fits(total, available)
            live.add(view.node_id)
            if not idle:
                self.idle_since.pop(view.node_id, None)
            since = self.idle_since.setdefault(view.node_id, now) if idle else now
            draining = bool(getattr(remote, "draining", False))
            node = policy.Node(
                node_id=view.node_id, node_type=labels[TYPE_LABEL] if ours else "", total=total, available=available,
                busy=view.busy, idle_s=now - since, draining=draining,
                drained=draining and bool(getattr(remote, "drained", False)),
                draining_s=now - self.drain_started.get(view.node_id, now),
            )  # fmt: skip
            result.append((node, instance, remote))
        for gone in set(self.idle_since) - live:
            del self.idle_since[gone]
        for gone in set(self.drain_started) - live:
            del self.drain_started[gone]
        return result

    def _demands(self) -> list[policy.Demand]:
        demands = []
        for view in self.head.registry.views():
            for demand in view.demands:
                if not any(is_group_resource(name) for name in demand.shape):  # a group's room, not a node's
                    demands += [policy.Demand.of(_plain(demand.shape))] * demand.count
        demands += [policy.Demand.of(_plain(shape)) for shape in self.head.actors.waiting_shapes()]
        demands += [policy.Demand.of(_plain(shape)) for shape in self.head.job_demands()]  # job entrypoints
        for group in self.head.groups.views():
            if group.state not in ("PENDING", "RESCHEDULING"):
                continue
            bundles = [_plain(b) for b, node in zip(group.bundles, group.nodes, strict=False) if not node]
            if group.strategy == "STRICT_PACK":
                total: dict[str, float] = {}
                for bundle in bundles:
                    res.add(total, bundle)
                demands.append(policy.Demand.of(total))
            elif group.strategy == "STRICT_SPREAD":
                demands.append(policy.Demand(tuple(bundles), strict_spread=True))
            else:
                demands += [policy.Demand.of(bundle) for bundle in bundles]
        return demands

    def _offer(self, name: str) -> dict[str, float]:
        offer = dict(self.limits.types[name].resources)
        offer.setdefault(res.MEMORY, policy.UNBOUNDED)
        return offer

    def _scalable(self, shape: dict[str, float]) -> bool:
        """Whether a node type that may still be added could host ``shape`` (for actors)."""
        return any(t.max_workers > 0 and res.fits(_plain(shape), self._offer(n)) for n, t in self.limits.types.items())

    # ---- launching -----------------------------------------------------------------------------

    def _launch(self, node_type: str, now: float) -> None:
        instance_id = f"{self.config.cluster_name}-{node_type}-{secrets.token_hex(4)}"
        launch = _Launch(instance_id, node_type, now, time.time())
        self.launching[instance_id] = launch
        log.info("autoscaler: launching a %s node (%s)", node_type, instance_id)
        assert self._nursery is not None
        self._nursery.start_soon(self._create, launch)

    async def _create(self, launch: _Launch) -> None:
        try:
            with trio.fail_after(self.config.launch_timeout_s):
                await self.provider.create(launch.node_type, launch.instance_id)
        except (LaunchError, trio.TooSlowError, OSError) as exc:
            reason = str(exc) or f"it did not start within {self.config.launch_timeout_s:g}s"
            self._failed(launch, reason)
            await self._cleanup(launch.instance_id)
            return
        except Exception as exc:  # a provider bug: reported like any failed launch
            log.exception("autoscaler: the %s provider failed", self.provider.name)
            self._failed(launch, f"{type(exc).__name__}: {exc}")
            return
        launch.created = True

    def _follow_launches(self, now: float, nodes: list[tuple[policy.Node, str, Any]]) -> None:
        joined = {instance for _node, instance, _remote in nodes}
        for launch in list(self.launching.values()):
            if launch.instance_id in joined:
                del self.launching[launch.instance_id]
                self.retry.pop(launch.node_type, None)
                log.info("autoscaler: %s joined", launch.instance_id)
            elif launch.created and now - launch.started > self.config.launch_timeout_s:
                self._failed(launch, f"it started but did not join the head within {self.config.launch_timeout_s:g}s")
                assert self._nursery is not None
                self._nursery.start_soon(self._cleanup, launch.instance_id)

    def _failed(self, launch: _Launch, reason: str) -> None:
        self.launching.pop(launch.instance_id, None)
        failures, _ = self.retry.get(launch.node_type, (0, 0.0))
        delay = self.backoff.delay(failures, self.rand())
        self.retry[launch.node_type] = (failures + 1, trio.current_time() + delay)
        log.warning("autoscaler: launching %s failed (retry in %.1fs): %s", launch.instance_id, delay, reason)
        self.failed.append(
            LaunchView(
                instance_id=launch.instance_id, node_type=launch.node_type, state="failed", since=time.time(),
                error=reason, retry_in=round(delay, 3),
            )
        )  # fmt: skip

    async def _cleanup(self, instance_id: str) -> None:
        """Stop what a failed launch may have left running."""
        with trio.move_on_after(60):
            try:
                await self.provider.terminate(instance_id)
            except Exception as exc:
                log.warning("autoscaler: could not clean up after %s: %s", instance_id, exc)

    # ---- stopping ---------------------------------------------------------------------------------

    def _stop(self, instance_id: str, node_type: str, node_id: bytes) -> None:
        self.terminating[instance_id] = node_type
        log.info("autoscaler: stopping drained node %s (%s)", _ids.short(node_id), instance_id)
        assert self._nursery is not None
        self._nursery.start_soon(self._terminate, instance_id)

    async def _terminate(self, instance_id: str) -> None:
        try:
            with trio.move_on_after(120):
                await self.provider.terminate(instance_id)
        except Exception as exc:
            log.warning("autoscaler: stopping %s failed: %s", instance_id, exc)
        finally:
            self.terminating.pop(instance_id, None)

    # ---- status ---------------------------------------------------------------------------------

    def view(self) -> AutoscalerView:
        now = trio.current_time()
        workers: dict[str, int] = {name: 0 for name in self.limits.types}
        draining = []
        for remote in self.head.registry.nodes():
            view = remote.view()
            node_type = view.labels.get(TYPE_LABEL, "")
            if view.labels.get(CLUSTER_LABEL) == self.config.cluster_name and node_type in workers:
                workers[node_type] += 1
            if getattr(remote, "draining", False):
                draining.append(view.node_id)
        failed = [
            f if f.retry_in == 0 else _retry_left(f, self.retry.get(f.node_type, (0, now))[1] - now) for f in self.failed
        ]
        return AutoscalerView(
            cluster_name=self.config.cluster_name, provider=self.provider.name, workers=workers,
            max_workers=self.config.max_workers,
            launching=[
                LaunchView(instance_id=l.instance_id, node_type=l.node_type, state="launching", since=l.wall)
                for l in self.launching.values()
            ],
            failed=failed, draining=draining, requested=list(self.head.requested), infeasible=self.infeasible,
        )  # fmt: skip


def _retry_left(failure: LaunchView, left: float) -> LaunchView:
    import msgspec

    return msgspec.structs.replace(failure, retry_in=round(max(0.0, left), 1))


def _count(names: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return counts


def _plain(shape: dict[str, float]) -> dict[str, float]:
    return {k: v for k, v in res.normalize(shape).items() if k not in IGNORED}


def head_placement(head: Any, token_file: str) -> Placement:
    """Where workers find the head: its TCP address, and the token file on its machine."""
    tcp = next((part for part in parts(head.address) if not is_unix(part)), "")
    return Placement(head_address=tcp, token_file=token_file)


def autoscaler_spec(config_path: str, head: Any, token_file: str, session_dir: str) -> supervisors.ChildSpec:
    """The autoscaler as a child of the head's root supervisor (a fresh one per restart)."""

    def start() -> supervisors.Child:
        config = load_config(config_path)
        from pathlib import Path

        provider = make_provider(config, head_placement(head, token_file), Path(session_dir) / "autoscaler")
        return supervisors.TaskChild(Autoscaler(config, provider, head).run)

    return supervisors.ChildSpec(id="autoscaler", start=start)

"""The node service: lease requests, worker pool, object store and log relay of one node."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import trio

import supervisors

from .._core._packages import fetch_package
from .._runtime_env import PackageStore
from .._store import ObjectStore
from .._store._spill import spill_settings
from .._wire import (
    ActorInitDone,
    ActorSpec,
    ActorSpecRequest,
    AppMetrics,
    Channel,
    Demand,
    EntrypointState,
    JobSpec,
    NodeInfoReply,
    NodeInfoRequest,
    NodeMessage,
    NodeView,
    PendingTasksReply,
    ObjectsReply,
    ReadLog,
    RequestLease,
    ReturnLease,
    SubscribeLogs,
    TaskEvents,
    WorkerBlocked,
    WorkerExitQuery,
    WorkerExitReply,
    WorkerUnblocked,
    local_part,
    serve,
)
from . import _resources as res
from ._actors import ActorHost
from ._app_metrics import AppMetricsTable
from ._config import NodeConfig
from ._memory_monitor import MemoryMonitor
from ._memory_monitor import settings as monitor_settings
from ._node_inspector import NodeInspector
from ._owner_tasks import OwnerTasks
from ._entrypoints import EntrypointHost
from ._leases import LeaseManager
from ._logs import LogRelay
from ._pool import Worker, WorkerPool, env_key
from ._task_history import TaskHistory

log = logging.getLogger("actorlib.node")
HOUSEKEEPING_PERIOD = 1.0
PRESTARTED_WORKERS = 1
EXIT_QUERY_WAIT = 5.0


class Registry(Protocol):
    def add(self, node: NodeService) -> None: ...
    def remove(self, node: NodeService) -> None: ...
    def views(self) -> list[NodeView]: ...


class NodeState:
    """Links one incarnation of a node's ``workers`` and ``actors`` supervisors to its service."""

    def __init__(self) -> None:
        self.pool_supervisor: supervisors.Supervisor | None = None
        self.actors_supervisor: supervisors.Supervisor | None = None
        self.jobs_supervisor: supervisors.Supervisor | None = None
        self.listener: Callable[[supervisors.Event], None] | None = None
        self.actor_listener: Callable[[supervisors.Event], None] | None = None

    def on_pool_event(self, event: supervisors.Event) -> None:
        if self.listener is not None:
            self.listener(event)

    def on_actor_event(self, event: supervisors.Event) -> None:
        if self.actor_listener is not None:
            self.actor_listener(event)


class NodeService:
    """Serves one node's socket; runs as a task child of the node supervisor."""

    def __init__(
        self,
        config: NodeConfig,
        token: str,
        registry: Registry,
        state: NodeState,
        zygote: supervisors.Zygote | None = None,
        root: Callable[[], supervisors.Supervisor | None] | None = None,
    ) -> None:
        self.config = config
        self.root = root  # this process's root supervisor, for ``actorlib tree``
        self.zygote = zygote
        self.token = token
        self.registry = registry
        self.state = state
        self.node_id = bytes.fromhex(config.node_id)
        self.total = res.normalize(config.resources)
        self.leases: LeaseManager | None = None
        self.actors: ActorHost | None = None
        self.entrypoints: EntrypointHost | None = None
        self.store: ObjectStore | None = None
        self.address = config.address  # as bound (TCP ports chosen) once running
        self.store_address = config.store_address
        self.tasks = TaskHistory(config.node_id)
        self.app_metrics = AppMetricsTable()  # what its processes' actorlib.util.metrics report
        self.owner_tasks = OwnerTasks()  # what the drivers and workers connected here have not started
        self.inspector = NodeInspector(self)
        self.memory_monitor = MemoryMonitor(self, *monitor_settings())  # a bad setting fails the node's start
        self.spill = spill_settings(config.session_dir, config.object_spilling_directory, config.object_spilling_limit)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        config = self.config
        session = Path(config.session_dir)
        async with trio.open_nursery() as nursery:
            assert self.state.pool_supervisor is not None
            pool = WorkerPool(
                self.state.pool_supervisor,
                session_dir=session,
                ip=config.ip if config.tcp else "",
                base_env=self._worker_env(),
                logs=LogRelay(session / "logs"),
                nursery=nursery,
                on_change=lambda: self.leases.schedule() if self.leases else None,
                on_exit=self._worker_exited,
                zygote=self.zygote,
            )
            self.pool = pool
            self.logs = pool.logs
            self.state.listener = pool.on_event
            self.leases = LeaseManager(self.total, pool, self.node_id, self.registry.views, config.gpu_ids)
            self.leases.node_types = getattr(self.registry, "node_types", self.leases.node_types)
            self.leases.settling = getattr(self.registry, "settling", self.leases.settling)
            self.actors = ActorHost(self.node_id, pool, self.leases, self.token)
            self.actors.supervisor = self.state.actors_supervisor
            self.state.actor_listener = self.actors.on_event
            self.entrypoints = EntrypointHost(
                node_id=config.node_id, session_dir=session, head_address=config.head_address,
                token_path=config.token_path, ledger=self.leases, nursery=nursery,
                supervisor=lambda: self.state.jobs_supervisor, fetch=self._fetch_package,
            )  # fmt: skip
            self.store = ObjectStore(config.object_store_memory, spill=self.spill)
            self.store_address = await nursery.start(self.store.serve, config.store_address, self.token)
            self.address = await nursery.start(serve, config.address, self.token, NodeMessage, self._serve_channel)
            pool.base_env["ACTORLIB_STORE_PUBLIC"] = self.store_address  # with its TCP port, once bound
            self.registry.add(self)
            try:
                # One warm worker serves the first task at once; more are forked from the
                # zygote as leases need them (milliseconds each), so an idle node costs
                # one worker's memory, not one per CPU.
                for _ in range(min(PRESTARTED_WORKERS, int(self.total.get(res.CPU, 0)))):
                    pool.start({})
                nursery.start_soon(self._housekeeping)
                nursery.start_soon(self.memory_monitor.run)
                task_status.started()
                await trio.sleep_forever()
            finally:
                self.registry.remove(self)
                self.entrypoints.lost(f"its node {config.short} ({config.ip}) stopped running job entrypoints")
                self.actors.stop_all()
                self.store.close()

    def pending(self) -> int:
        """Lease requests waiting here (reported to the head with each heartbeat)."""
        return self.leases.pending if self.leases is not None else 0

    def start_actor(self, spec: ActorSpec, directory: Any) -> None:
        """Create an actor here (called by the head's directory)."""
        self.actors.start(spec, directory)

    def kill_actor(self, actor_id: bytes, no_restart: bool, reason: str) -> None:
        self.actors.kill(actor_id, no_restart, reason)

    # ---- job entrypoints (the head's job manager places them) --------------------------------

    def start_job(self, spec: JobSpec, report: Callable[[EntrypointState], None]) -> None:
        """Run a job's entrypoint here, reporting what becomes of it (see ``_entrypoints``)."""
        if self.entrypoints is None:
            report(EntrypointState(submission_id=spec.submission_id, state="REFUSED", error="the node is not running"))
            return
        self.entrypoints.start(spec, report)

    def stop_job(self, submission_id: str, reason: str) -> None:
        if self.entrypoints is not None:
            self.entrypoints.stop(submission_id, reason)

    def forget_job(self, submission_id: str) -> None:
        if self.entrypoints is not None:
            self.entrypoints.forget(submission_id)

    def entrypoint_states(self) -> list[EntrypointState]:
        return self.entrypoints.states() if self.entrypoints is not None else []

    def _fetch_package(self, name: str) -> bytes | Path:
        """A runtime_env package: the head's own file on the head's machine, else from the head."""
        local = PackageStore(Path(self.config.session_dir) / "packages")
        if local.has(name):
            return local.path(name)
        return fetch_package(self.config.head_address, self.token, name)

    # ---- placement group bundles (the head's two-phase reservation) ------------------------

    async def prepare_bundles(self, pg_id: bytes, bundles: dict[int, dict[str, float]]) -> str:
        return self.leases.prepare_bundles(pg_id, bundles) if self.leases is not None else "the node is not running"

    async def commit_bundles(self, pg_id: bytes) -> str:
        return self.leases.commit_bundles(pg_id) if self.leases is not None else "the node is not running"

    async def release_bundles(self, pg_id: bytes, indexes: list[int], reason: str) -> str:
        if self.leases is None:
            return ""
        if not indexes and self.actors is not None:
            self.actors.kill_group(pg_id, f"its placement group was {reason or 'removed'}")
        self.leases.release_bundles(pg_id, indexes, reason)
        return ""

    def groups(self) -> list[bytes]:
        """Placement groups with bundles here."""
        return list(self.leases.bundles) if self.leases is not None else []

    def _worker_env(self) -> dict[str, str]:
        config = self.config
        env = {k: v for k, v in os.environ.items() if not k.startswith("SUPERVISORS_")}
        env.update(
            ACTORLIB_SESSION_DIR=config.session_dir,
            ACTORLIB_NODE_ID=config.node_id,
            ACTORLIB_NODE_ADDRESS=local_part(self.address) or self.address,
            ACTORLIB_STORE_ADDRESS=local_part(self.store_address) or self.store_address,
            ACTORLIB_HEAD_ADDRESS=config.head_address,
            ACTORLIB_TOKEN_FILE=str(config.token_path),
            ACTORLIB_HEAD_NODE="1" if config.is_head else "",  # the head's own node: never declared dead
        )
        return env

    async def _housekeeping(self) -> None:
        keep = {env_key({}): int(self.total.get(res.CPU, 0))}
        ticks = 0
        while True:
            await trio.sleep(HOUSEKEEPING_PERIOD / 4)
            if self.leases is not None:
                self.leases.rebalance()  # queued work goes where room appeared (new nodes too)
            ticks += 1
            if ticks % 4 == 0:
                self.pool.reap_idle(keep, self.config.idle_worker_timeout)
                self.logs.tell_dropped()

    def drain(self, drain: bool) -> None:
        """Take no new work (the autoscaler will stop this node once nothing runs), or take it again."""
        if self.leases is not None:
            self.leases.set_draining(drain)

    def busy(self) -> int:
        """Leases, live actors, stored objects and job entrypoints here: what stopping the node would lose."""
        leases = len(self.leases.leases) if self.leases is not None else 0
        actors = self.actors.live() if self.actors is not None else 0
        objects = self.store.stats()[2] if self.store is not None else 0
        entrypoints = self.entrypoints.running() if self.entrypoints is not None else 0
        return leases + actors + objects + entrypoints

    async def query(self, kind: str) -> bytes:
        """This node's part of a state query (see ``_node_inspector.NodeInspector``), msgpack-encoded."""
        return await self.inspector.query(kind)

    def _worker_exited(self, worker: Worker) -> None:
        lease = worker.lease
        leased = (lease.name, lease.job_id) if lease is not None else None
        self.tasks.worker_gone(worker.worker_id, worker.exit_reason, leased, worker.pid)
        if self.leases is not None:
            self.leases.worker_exited(worker)

    async def _serve_channel(self, channel: Channel) -> None:
        leases = self.leases
        assert leases is not None
        self.owner_tasks.connected(channel)
        try:
            async for message in channel:
                self._dispatch(channel, message)
        finally:
            self.owner_tasks.disconnected(channel)
            self._metrics_gone(channel)
            leases.owner_gone(channel)
            self.logs.unsubscribe(channel)
            owner = _owner_of(channel.peer)
            if owner is not None and self.store is not None:
                self.store.free_owner(owner)

    def _metrics_gone(self, channel: Channel) -> None:
        try:
            self.app_metrics.gone(channel)
        except Exception:  # a bug there must not skip the rest of the clean-up
            log.exception("the application metrics of %s were not retired", channel.peer)

    def _dispatch(self, channel: Channel, message: Any) -> None:
        leases = self.leases
        assert leases is not None
        kind = type(message)
        if kind is RequestLease:
            leases.request(message, channel)
        elif kind is ReturnLease:
            leases.release(message.lease_id, message.kill)
        elif kind is WorkerBlocked:
            leases.set_blocked(message.worker_id, True)
        elif kind is WorkerUnblocked:
            leases.set_blocked(message.worker_id, False)
        elif kind is SubscribeLogs:
            self.logs.subscribe(message.job_id, channel)
        elif kind is WorkerExitQuery:
            self.pool.nursery.start_soon(self._answer_exit, channel, message)
        elif kind is TaskEvents:
            self.tasks.add(message)
        elif kind is PendingTasksReply or kind is ObjectsReply:
            self.owner_tasks.reply(message)
        elif kind is ReadLog:
            self.pool.nursery.start_soon(self.inspector.stream_log, channel, message)
        elif kind is NodeInfoRequest:
            channel.send_nowait(NodeInfoReply(req=message.req, node=self.view()))
        elif kind is ActorSpecRequest and self.actors is not None:
            self.actors.spec_request(channel, message)
        elif kind is ActorInitDone and self.actors is not None:
            self.actors.init_done(message)
        elif kind is AppMetrics:
            try:
                self.app_metrics.report(channel, f"{channel.peer} (pid {message.pid})", message)
            except Exception:  # a bug there must not take the node's service down
                log.exception("application metrics from %s were dropped", channel.peer)

    async def _answer_exit(self, channel: Channel, query: WorkerExitQuery) -> None:
        reason = await self.pool.exit_reason(query.worker_id, EXIT_QUERY_WAIT)
        if not channel.closed:
            channel.send_nowait(WorkerExitReply(req=query.req, reason=reason))

    def view(self) -> NodeView:
        config = self.config
        available = dict(self.leases.available) if self.leases is not None else dict(self.total)
        store_used = self.store.stats()[0] if self.store is not None else 0
        total = {**self.total, "object_store_memory": float(config.object_store_memory)}
        available["object_store_memory"] = float(config.object_store_memory - store_used)
        return NodeView(
            node_id=self.node_id,
            address=self.address,
            store=self.store_address,
            hostname=socket.gethostname(),
            ip=config.ip,
            pid=os.getpid(),
            alive=True,
            total=total,
            available=available,
            session_dir=config.session_dir,
            is_head=config.is_head,
            pending=self.pending(),
            demands=self.demands(),
            labels=dict(config.labels),
            busy=self.busy(),
            draining=self.leases.draining if self.leases is not None else False,
        )

    def demands(self) -> list[Demand]:
        """What waits here for resources: lease requests and actors, by shape."""
        tasks = self.leases.demands() if self.leases is not None else []
        return tasks + (self.actors.demands() if self.actors is not None else [])


def _owner_of(peer: str) -> bytes | None:
    _, _, hex_id = peer.partition(":")
    try:
        return bytes.fromhex(hex_id)
    except ValueError:
        return None

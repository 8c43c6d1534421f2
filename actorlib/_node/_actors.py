"""The actors of one node: each under supervision, with its resources, reporting its state.

::

    actors (pool)
    ├─ Counter-1a2b3c        one_for_one, intensity = max_restarts (ever)
    │  └─ process            the actor's worker process (re-runs __init__ on restart)
    └─ group-ingest          a supervision group: its strategy and intensity
       ├─ Parser-4d5e6f
       └─ Writer-7a8b9c
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sys
import time
from typing import Any, Protocol

import msgspec
import trio

import supervisors

from .. import _ids
from .._serial import unbox
from .._wire import ActorInitDone, ActorSpecReply, ActorSpecRequest, Demand, ActorSpec, ActorView, Channel, ErrorValue, GroupSpec
from ..exceptions import TaskError
from . import _resources as res
from ._gpus import CUDA_VISIBLE_DEVICES
from ._leases import LeaseManager, count_demands
from ._pool import WorkerPool

log = logging.getLogger("actorlib.node")

ACTOR_SHUTDOWN = 5.0
ACTOR_START_TIMEOUT = 600.0  # __init__ may load a model
# Actor processes booting at once (forked, not yet connected and READY; __init__ is not
# counted): a thousand booting together starve each other and the node past their timeouts.
BOOTING_AT_ONCE = max(16, 4 * (os.cpu_count() or 1))
UNLIMITED = sys.maxsize


class Directory(Protocol):
    """Where actor state changes are reported (the head's ActorDirectory)."""

    def update(self, actor_id: bytes, state: str, **fields: Any) -> None: ...


class _Hosted:
    __slots__ = ("spec", "directory", "key", "group", "child", "dead", "reserved", "turn", "turns", "gpu_ids", "restarts", "since")

    def __init__(self, spec: ActorSpec, directory: Directory) -> None:
        self.spec = spec
        self.directory = directory
        self.key = f"{spec.class_name}-{_ids.short(spec.actor_id)}"
        self.group = spec.group.group_id if spec.group is not None else None
        self.child: ActorChild | None = None
        self.dead = False
        self.reserved = False
        self.turn = 0  # its place in its group's start order
        self.turns: list[Any] = []  # its group's [next ticket, next to start, changed]
        self.gpu_ids: list[str] = []  # the GPUs it holds for life: its CUDA_VISIBLE_DEVICES
        self.restarts = 0  # its process's exits on this node so far (each uses up a restart)
        self.since = 0.0  # monotonic: when its current incarnation became ALIVE

    def restarts_left(self) -> int:
        """How many more times its supervisor will restart it (UNLIMITED for max_restarts=-1)."""
        limit = self.spec.max_restarts
        return UNLIMITED if limit == -1 else max(0, limit - self.restarts)


class ActorHost:
    """Starts, watches, restarts (by policy) and kills this node's actors."""

    def __init__(self, node_id: bytes, pool: WorkerPool, leases: LeaseManager, token: str) -> None:
        self.node_id = node_id
        self.pool = pool
        self.leases = leases
        self.token = token
        self.supervisor: supervisors.Supervisor | None = None
        self._actors: dict[bytes, _Hosted] = {}
        self._by_key: dict[str, _Hosted] = {}
        self._groups: dict[bytes, supervisors.Supervisor] = {}
        self._group_keys: dict[str, bytes] = {}
        self._group_lock = trio.Lock()
        self._turns: dict[bytes, list[Any]] = {}  # group id -> [next ticket, next to start, changed]
        self.booting = trio.CapacityLimiter(BOOTING_AT_ONCE)
        self._initializing: dict[bytes, ActorChild] = {}  # worker id -> its incarnation, until ActorInitDone

    # ---- from actor processes, on their connections to this node ------------------------

    def spec_request(self, channel: Channel, request: ActorSpecRequest) -> None:
        """A fresh actor process asks which actor it is: send its spec (ActorSpecReply)."""
        child = self._initializing.get(request.worker_id)
        if child is None:  # its start was given up (it is being stopped): nothing to become
            log.warning("an actor process (worker %s) asked for an actor this node no longer starts", request.worker_id.hex())
            return
        channel.send_nowait(ActorSpecReply(req=request.req, spec=child.hosted.spec))

    def init_done(self, message: ActorInitDone) -> None:
        """An actor process ran its ``__init__`` (or it raised)."""
        child = self._initializing.get(message.worker_id)
        if child is not None:
            child.initialized(message)

    # ---- requests from the head ------------------------------------------------------

    def start(self, spec: ActorSpec, directory: Directory) -> None:
        hosted = _Hosted(spec, directory)
        self._actors[spec.actor_id] = hosted
        self._by_key[hosted.key] = hosted
        if hosted.group is not None:  # members start in the order they were created
            turns = hosted.turns = self._turns.setdefault(hosted.group, [0, 0, trio.Event()])
            hosted.turn = turns[0]
            turns[0] += 1
        self.pool.nursery.start_soon(self._start, hosted)

    async def _start(self, hosted: _Hosted) -> None:
        spec = hosted.spec
        try:
            hosted.gpu_ids = await self.leases.reserve(spec.shape)
        except LookupError as exc:  # its placement group went away while it waited
            self._dead(hosted, str(exc))
            return
        hosted.reserved = True
        if hosted.dead:  # killed while it waited for resources
            self._release(hosted)
            return
        child = supervisors.ChildSpec(
            id=hosted.key, start=lambda: self._new_child(hosted), restart="permanent",
            shutdown=ACTOR_SHUTDOWN, start_timeout=ACTOR_START_TIMEOUT,
        )  # fmt: skip
        try:
            if spec.group is None:
                await self._pool().start_child(_alone(hosted, child))
            else:
                await self._start_in_group(hosted, spec.group, child)
        except supervisors.StartError as exc:
            self._dead(hosted, exc.exit.reason)
        except RuntimeError as exc:  # the node is shutting down
            self._dead(hosted, f"its node stopped: {exc}")

    async def _start_in_group(self, hosted: _Hosted, group: GroupSpec, child: supervisors.ChildSpec) -> None:
        turns = hosted.turns
        while turns[1] != hosted.turn:
            await turns[2].wait()
        try:
            supervisor = await self._group(group)
            await supervisor.start_child(child)
        finally:
            turns[1] += 1
            turns[2].set()
            turns[2] = trio.Event()

    def _pool(self) -> supervisors.Supervisor:
        assert self.supervisor is not None
        return self.supervisor

    async def _group(self, group: GroupSpec) -> supervisors.Supervisor:
        async with self._group_lock:
            existing = self._groups.get(group.group_id)
            if existing is not None and existing.state == "running":
                return existing
            created: list[supervisors.Supervisor] = []

            def start() -> supervisors.Child:
                sup = supervisors.Supervisor(
                    id=group.name,
                    strategy=group.strategy,
                    intensity=supervisors.Intensity(max_restarts=group.max_restarts, within=group.period_s),
                )
                created.append(sup)
                return supervisors.SupervisorChild(sup)

            self._group_keys[group.name] = group.group_id
            spec = supervisors.ChildSpec(id=group.name, start=start, restart="temporary", shutdown="infinity")
            await self._pool().start_child(spec)
            self._groups[group.group_id] = created[-1]
            return created[-1]

    def _new_child(self, hosted: _Hosted) -> ActorChild:
        hosted.child = ActorChild(self, hosted)
        return hosted.child

    def kill(self, actor_id: bytes, no_restart: bool, reason: str) -> None:
        hosted = self._actors.get(actor_id)
        if hosted is None or hosted.dead:
            return
        if not no_restart:
            pid = hosted.child.pid if hosted.child is not None else None
            if pid:
                _sigkill(pid)  # its supervisor restarts it, per policy
            return
        self._dead(hosted, reason)
        self.pool.nursery.start_soon(self._terminate, hosted, reason)

    def kill_group(self, pg_id: bytes, reason: str) -> None:
        """Kill (for good) the actors placed in placement group ``pg_id``."""
        for hosted in list(self._actors.values()):
            if hosted.spec.placement_group == pg_id:
                self.kill(hosted.spec.actor_id, True, reason)

    async def _terminate(self, hosted: _Hosted, reason: str) -> None:
        try:
            if hosted.group is None:
                await self._pool().terminate_child(hosted.key, reason)
            else:
                group = self._groups.get(hosted.group)
                if group is not None:
                    await group.terminate_child(hosted.key, reason)
        except (LookupError, RuntimeError):
            pass  # already gone

    # ---- what the supervisors and children report ---------------------------------------

    def on_event(self, event: supervisors.Event) -> None:
        """Events of the actors pool and everything under it."""
        if self.supervisor is None or event.type not in ("exited", "stopped"):
            return
        parts = event.path[len(self.supervisor.path) + 1 :].split("/")
        if len(parts) == 1:  # a per-actor supervisor or a group is gone: its actors are dead
            reason = event.exit.reason if event.exit is not None else "stopped"
            for hosted in self._members(parts[0]):
                self._dead(hosted, reason)
            return
        key = parts[0] if parts[-1] == "process" else parts[-1]
        hosted = self._by_key.get(key)
        if hosted is not None and not hosted.dead:
            hosted.restarts += 1
            cause = event.exit.reason if event.exit is not None else ""
            hosted.directory.update(hosted.spec.actor_id, "RESTARTING", cause=cause)

    def _members(self, key: str) -> list[_Hosted]:
        group_id = self._group_keys.pop(key, None)
        if group_id is not None:  # the group is gone: forget it (members still to start begin anew)
            self._groups.pop(group_id, None)
            self._turns.pop(group_id, None)
            return [h for h in self._actors.values() if h.group == group_id]
        hosted = self._by_key.get(key)
        return [hosted] if hosted is not None else []

    def alive(self, hosted: _Hosted, pid: int, address: str, core: str = "") -> None:
        if not hosted.dead:
            hosted.since = time.monotonic()
            hosted.directory.update(
                hosted.spec.actor_id, "ALIVE", pid=pid, address=address, node_id=self.node_id, core=core
            )

    def _dead(self, hosted: _Hosted, cause: str) -> None:
        if hosted.dead:
            return
        hosted.dead = True
        self._release(hosted)
        self._actors.pop(hosted.spec.actor_id, None)
        self._by_key.pop(hosted.key, None)
        hosted.directory.update(hosted.spec.actor_id, "DEAD", cause=cause)

    def _release(self, hosted: _Hosted) -> None:
        if hosted.reserved:
            hosted.reserved = False
            self.leases.give_back(res.normalize(hosted.spec.shape), hosted.gpu_ids)
            hosted.gpu_ids = []
            self.leases.schedule()

    def live(self) -> int:
        """How many actors this node hosts (starting, running or restarting)."""
        return sum(1 for hosted in self._actors.values() if not hosted.dead)

    def demands(self) -> list[Demand]:
        """Actors waiting here for their resources, counted by shape."""
        waiting = [dict(h.spec.shape) for h in self._actors.values() if not h.reserved and not h.dead]
        return count_demands(waiting, "actor")

    def views(self) -> list[ActorView]:
        """The actors hosted here that are alive (re-registration after a head restart)."""
        views = []
        for hosted in self._actors.values():
            child = hosted.child
            if hosted.dead or child is None or child.address is None:
                continue
            spec = hosted.spec
            views.append(
                ActorView(
                    actor_id=spec.actor_id, state="ALIVE", address=child.address, pid=child.pid or 0,
                    class_name=spec.class_name, name=spec.name, namespace=spec.namespace,
                    methods=spec.methods, max_task_retries=spec.max_task_retries, node_id=self.node_id,
                )  # fmt: skip
            )
        return views

    # ---- inspection (the state API) -------------------------------------------------------

    def spec_of(self, key: str) -> ActorSpec | None:
        """The spec of the live actor whose supervisor child id is ``key``."""
        hosted = self._by_key.get(key)
        return hosted.spec if hosted is not None else None

    def is_group(self, name: str) -> bool:
        """Whether ``name`` is the child id of a supervision group's supervisor here."""
        return name in self._group_keys

    def processes(self) -> list[tuple[ActorSpec, bytes, int]]:
        """(spec, worker id, pid) of each live actor process here."""
        out = []
        for hosted in self._actors.values():
            child = hosted.child
            if not hosted.dead and child is not None and child.pid:
                out.append((hosted.spec, child.worker_id, child.pid))
        return out

    def restartable(self) -> list[tuple[ActorSpec, ActorChild, float, int]]:
        """(spec, live process, when it became ALIVE, restarts left) of each actor here that its
        supervisor would restart if its process died: not in a supervision group (the group's
        policy decides there), ALIVE, and with restarts left. What the memory monitor may kill."""
        out = []
        for hosted in self._actors.values():
            child = hosted.child
            if hosted.dead or hosted.group is not None or child is None or not child.pid or child.address is None:
                continue
            if (left := hosted.restarts_left()) > 0:
                out.append((hosted.spec, child, hosted.since, left))
        return out

    def stop_all(self) -> None:
        for hosted in list(self._actors.values()):
            self._dead(hosted, "its node stopped")


def _alone(hosted: _Hosted, process: supervisors.ChildSpec) -> supervisors.ChildSpec:
    """The supervisor of an actor outside any group: intensity = its max_restarts, for life."""
    limit = UNLIMITED if hosted.spec.max_restarts == -1 else hosted.spec.max_restarts
    inner = supervisors.ChildSpec(
        id="process", start=process.start, restart="permanent", shutdown=ACTOR_SHUTDOWN, start_timeout=ACTOR_START_TIMEOUT
    )

    def start() -> supervisors.Child:
        sup = supervisors.Supervisor(
            [inner], id=hosted.key, intensity=supervisors.Intensity(max_restarts=limit, within=math.inf)
        )
        return supervisors.SupervisorChild(sup)

    # The actor's supervisor is started once its process is: its start may take as long.
    return supervisors.ChildSpec(
        id=hosted.key, start=start, restart="temporary", shutdown="infinity", start_timeout=ACTOR_START_TIMEOUT
    )


def _sigkill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class ActorChild:
    """One incarnation of an actor: a worker process that ran the actor's ``__init__``.

    READY once ``__init__`` returned; if it raised, the start fails with the
    error (and counts as a restart attempt).
    """

    kind = "process"

    def __init__(self, host: ActorHost, hosted: _Hosted) -> None:
        self.host = host
        self.hosted = hosted
        self.address: str | None = None
        self.worker_id = _ids.unique_id()
        self.killed_because = ""  # set by kill(): the exit reason its supervisor and the head see
        env = {**hosted.spec.env, CUDA_VISIBLE_DEVICES: ",".join(hosted.gpu_ids)}
        self.process = host.pool.make_process(self.worker_id, env, hosted.key, actor=True)
        self._init_reply: ActorInitDone | None = None
        self._init_done = trio.Event()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    async def start(self, nursery: trio.Nursery) -> None:
        initializing = self.host._initializing
        initializing[self.worker_id] = self  # before it runs: it may ask before READY is read
        try:
            async with self.host.booting:
                await self.process.start(nursery)
            core, exec_ = self.process.ready_info.get("core", ""), self.process.ready_info.get("exec", "")
            try:
                error, calls_exec = await self._initialize()
            except EOFError:  # it died during __init__: its exit says why
                raise supervisors.StartError(self.hosted.key, await self.process.wait()) from None
            except BaseException:
                with trio.CancelScope(shield=True):
                    await self.process.stop(0, "__init__ did not complete")
                raise
        finally:
            initializing.pop(self.worker_id, None)
        if error is not None:
            await self.process.stop(0, "__init__ raised")
            raise supervisors.StartError(self.hosted.key, _init_exit(error))
        self.address = exec_ if calls_exec else core
        self.host.alive(self.hosted, self.pid or 0, self.address, core if calls_exec else "")

    async def _initialize(self) -> tuple[ErrorValue | None, bool]:
        """Wait for the process to ask for its spec (ActorSpecRequest, on its connection to this
        node), run ``__init__`` and answer ActorInitDone. EOFError if it exits first."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._exit_ends_init)
            await self._init_done.wait()
            nursery.cancel_scope.cancel()
        reply = self._init_reply
        if reply is None:
            raise EOFError("the actor process exited during __init__")
        return reply.error, reply.exec

    async def _exit_ends_init(self) -> None:
        await self.process.wait()
        self._init_done.set()

    def initialized(self, reply: ActorInitDone) -> None:
        if not self._init_done.is_set():
            self._init_reply = reply
            self._init_done.set()

    async def wait(self) -> supervisors.Exit:
        exit = await self.process.wait()
        if self.killed_because:
            return msgspec.structs.replace(exit, reason=self.killed_because)
        return exit

    def kill(self, reason: str) -> None:
        """SIGKILL this incarnation (its process group) for ``reason``; its supervisor restarts
        it by policy, and its exit reason is ``reason``."""
        self.killed_because = reason
        if self.pid:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def stop(self, timeout: float | None, reason: str) -> supervisors.Exit:
        return await self.process.stop(timeout, reason)


def _init_exit(error: ErrorValue) -> supervisors.Exit:
    cause = unbox(error)
    inner = cause.cause if isinstance(cause, TaskError) and cause.cause is not None else cause
    text = f"{type(inner).__name__}: {inner}"
    traceback = cause.traceback_str if isinstance(cause, TaskError) else None
    return supervisors.Exit(
        kind=supervisors.ExitKind.ABNORMAL,
        reason=f"__init__ raised {text}",
        error_type=type(inner).__name__,
        traceback=traceback,
        at=trio.current_time(),
    )

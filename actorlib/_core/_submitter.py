"""Task submission on the owner's side: dependencies, worker leases, pipelining, retries.

Runs on the runtime's Trio thread only. Tasks wait for their top-level
ObjectRef arguments, then join a queue per scheduling key (resource shape
and environment). Each queue leases workers from the node and pushes tasks
to them directly; short tasks are pipelined several deep per lease, long
ones one at a time so that work spreads over every leased worker.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import trio

from .._ids import TASK_ID_LEN, return_id
from .._serial import LOST_ARGUMENT, Exported, box_system, boxed_type, unbox
from .._wire import Channel, ConnectionFailed, ErrorValue, Inline, LeaseGranted, LeaseRefused, PushTask, RequestLease, ReturnLease, Stored, TaskDone, Value
from .._wire import CancelTask, PendingTask, WaitPlacementGroup, WorkerExitQuery
from ..exceptions import (
    InfeasibleResourcesError,
    ObjectLostError,
    OutOfMemoryError,
    TaskCancelledError,
    TaskUnschedulableError,
    WorkerCrashedError,
    WorkerStartError,
)
from ._objects import CallbackWaiter

if TYPE_CHECKING:
    from ._refs import ObjectRef
    from ._runtime import Runtime

log = logging.getLogger("actorlib.core")

PIPELINE_DEPTH = 16  # tasks in flight per lease, for short tasks
SHORT_TASK = 0.002  # seconds; tasks faster than this (on average) are pipelined
MAX_LEASE_REQUESTS = 10  # outstanding lease requests per scheduling key
LEASE_IDLE = 0.1  # seconds an unused lease is kept before it is returned
EXIT_QUERY_TIMEOUT = 2.0
GROUP_RETRIES = 50  # lease requests into a placement group refused while its bundles move
LEASE_RETRY = 0.05  # seconds before asking again after a lease request failed; doubles, up to
LEASE_RETRY_MAX = 1.0
OOM_KILLED = "killed by the memory monitor"  # how a node's memory monitor starts a worker's exit reason
OOM_RETRY = 1.0  # seconds before a task killed for memory runs again; doubles per such kill, up to
OOM_RETRY_MAX = 30.0
LEASE_GIVE_UP = 30.0  # seconds of failed lease requests (and no lease) before the queued tasks fail


NONE: tuple[()] = ()
NO_BUFFERS: list[bytes] = []  # shared (never appended to)


def scheduling_key(shape: dict[str, float], env: dict[str, str], strategy: tuple[str, bytes, bool], retriable: bool) -> str:
    """Tasks with the same key can run on the same leased workers. Retriable tasks lease apart:
    a node's memory monitor kills their workers first."""
    return repr((sorted(shape.items()), sorted(env.items()), strategy, retriable))


class TaskKind:
    """What the tasks of one remote function (with one set of options) share: one object for
    all of them, so that a queued task holds only what is its own."""

    __slots__ = (
        "fn", "name", "shape", "env", "max_retries", "retry_exceptions", "streaming", "strategy", "group",
        "capture", "key", "num_returns", "_local_keys",
    )  # fmt: skip

    def __init__(
        self,
        *,
        fn: Exported,
        name: str,
        shape: dict[str, float],
        env: dict[str, str],
        max_retries: int,
        retry_exceptions: bool | tuple[type[BaseException], ...],
        streaming: bool = False,
        strategy: tuple[str, bytes, bool] = ("DEFAULT", b"", False),
        group: tuple[bytes, int] | None = None,
        capture: bool = False,
        num_returns: int = 1,
    ) -> None:
        self.fn = fn
        self.name = name
        self.shape = shape
        self.env = env
        self.max_retries = max_retries
        self.retry_exceptions = retry_exceptions
        self.streaming = streaming
        self.strategy = strategy  # (name, node affinity, soft)
        self.group = group  # (placement group id, bundle index); its shape is in the group's resources
        self.capture = capture  # the task's own tasks and actors go into its group by default
        self.key = scheduling_key(shape, env, strategy, max_retries != 0)
        self.num_returns = 1 if streaming else num_returns  # a stream's error is one value
        self._local_keys: dict[bytes, str] = {}

    def key_at(self, locality: bytes) -> str:
        """The scheduling key of its tasks placed by locality on node ``locality`` (b"": none)."""
        if not locality:
            return self.key
        key = self._local_keys.get(locality)
        if key is None:
            shape, env = sorted(self.shape.items()), sorted(self.env.items())
            key = self._local_keys[locality] = repr((shape, env, self.strategy, self.max_retries != 0, locality))
        return key


def _shared(name: str) -> property:
    return property(lambda spec: getattr(spec.kind, name), doc=f"The task's kind's {name}.")


class TaskSpec:
    """One task invocation, as the owner tracks it.

    Slim, for 100,000 of them may be queued at once: its first return id is held (the object
    table and the ObjectRef hold the same bytes) and its task id and other return ids derived
    from it; what all tasks of one function share is in its ``kind``; arguments without
    out-of-band buffers are held as their pickled bytes alone.
    """

    __slots__ = (
        "_id", "kind", "_args", "deps", "attempt", "resolved", "lease", "nested", "parent", "created", "locality",
    )  # fmt: skip

    def __init__(
        self,
        *,
        task_id: bytes,
        kind: TaskKind,
        args: Inline,
        deps: list[ObjectRef],
        return_ids: tuple[bytes, ...],
        nested: list[ObjectRef] | None = None,
    ) -> None:
        # The first return id starts with the task id: one bytes object for both. (Derived
        # return ids are equal to those the caller made, so the table finds them.)
        assert kind.streaming or len(return_ids) == kind.num_returns, "return ids do not match the kind"
        self._id = return_ids[0] if return_ids else task_id
        self.kind = kind
        # Refs nested in the arguments, held until the task is done: by then its worker has
        # told their owners that it borrows them (or it never ran). Empty: one shared tuple,
        # as for deps and resolved, since 100,000 queued tasks each with lists add up.
        self.nested = nested or NONE
        self._args: Inline | bytes = args.data if not args.buffers else args
        self.deps = deps
        self.attempt = 0
        self.resolved: list[Value] | tuple[()] = NONE
        self.lease: _Lease | None = None
        self.parent = b""  # the task that submitted it, if it ran in one (recursive cancel)
        self.created = _created()  # for the state API's pending tasks
        self.locality = b""  # the node holding most bytes of its stored arguments, once resolved

    @property
    def task_id(self) -> bytes:
        return self._id[:TASK_ID_LEN]  # the same object when ``_id`` is the task id

    @property
    def return_ids(self) -> tuple[bytes, ...]:
        if self.kind.streaming:
            return ()
        first = self._id
        if self.kind.num_returns == 1:
            return (first,)
        task_id = first[:TASK_ID_LEN]
        return tuple(return_id(task_id, i) for i in range(self.kind.num_returns))

    @property
    def num_returns(self) -> int:
        return self.kind.num_returns

    @property
    def args(self) -> Inline:
        args = self._args
        return Inline(data=args, buffers=NO_BUFFERS) if type(args) is bytes else args  # type: ignore[return-value]

    @property
    def key(self) -> str:
        """Its scheduling key: its kind's, or (placed by locality) one of its own."""
        locality = self.locality
        return self.kind.key_at(locality) if locality else self.kind.key

    fn = _shared("fn")
    name = _shared("name")
    shape = _shared("shape")
    env = _shared("env")
    max_retries = _shared("max_retries")
    retry_exceptions = _shared("retry_exceptions")
    streaming = _shared("streaming")
    strategy = _shared("strategy")
    group = _shared("group")
    capture = _shared("capture")


_clock: list[float] = [0.0, 0.0]  # (monotonic ms, the time.time() float tasks made in it share)


def _created() -> float:
    """The time now, as one float object for every task created in the same millisecond."""
    now = time.time()
    if now - _clock[0] >= 0.001:
        _clock[0], _clock[1] = now, now
    return _clock[1]


class _Queue:
    __slots__ = (
        "key", "shape", "env", "strategy", "group", "turn", "retries", "tasks", "leases", "requesting",
        "failing_since", "failures", "locality", "retriable",
    )  # fmt: skip

    def __init__(self, spec: TaskSpec) -> None:
        self.key = spec.key
        self.shape = spec.shape
        self.env = spec.env
        self.strategy = spec.strategy
        self.group = spec.group
        self.locality = spec.locality  # part of the key: its leases are asked of that node first
        self.retriable = spec.max_retries != 0  # part of the key too
        self.turn = 0  # which of its group's nodes the next lease request goes to
        self.retries = 0
        self.tasks: deque[TaskSpec] = deque()
        self.leases: list[_Lease] = []
        self.requesting = 0
        self.failing_since: float | None = None  # lease requests have failed since then, none succeeded
        self.failures = 0


class _Lease:
    __slots__ = (
        "lease_id", "worker_id", "pid", "channel", "core", "node", "node_id", "queue", "inflight", "slow", "idle_since",
        "used", "gpu_ids",
    )  # fmt: skip

    def __init__(self, granted: Any, channel: Channel, queue: _Queue, node: Any) -> None:
        self.node = node  # the NodeLink that granted it: returns and questions go there
        self.node_id = granted.node_id
        self.lease_id = granted.lease_id
        self.worker_id = granted.worker_id
        self.pid = granted.pid
        self.gpu_ids = granted.gpu_ids
        self.channel = channel
        self.core = granted.core_address  # the worker's runtime: cancels go there
        self.queue = queue
        self.inflight: dict[bytes, TaskSpec] = {}
        self.slow: set[bytes] = set()  # ids of tasks in flight not known to be short: nothing may queue behind them
        self.idle_since = trio.current_time()
        self.used = False


class TaskSubmitter:
    """Owns the tasks this process submitted until their results arrive."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._queues: dict[str, _Queue] = {}
        self._running: dict[bytes, TaskSpec] = {}
        self._waiting: dict[bytes, TaskSpec] = {}
        self._backoff: dict[bytes, TaskSpec] = {}  # killed by a memory monitor: waiting to run again
        self._sent_fns: dict[Channel, set[bytes]] = {}
        self._durations: dict[bytes, float] = {}  # seconds per call, by function
        # Lineage: the task behind each result kept in a store, to run it again if that
        # store's node dies. Held (with the task's arguments) while the result is referenced.
        self._lineage: dict[bytes, TaskSpec] = {}
        self._dead_nodes: set[bytes] = set()
        # Rare states of a task, kept here rather than in every TaskSpec; dropped when it finishes.
        self._cancelled: set[TaskSpec] = set()  # running tasks asked to cancel
        self._oom_kills: dict[TaskSpec, int] = {}  # times a memory monitor killed its worker (retries back off)

    # ---- what has not started (the state API) --------------------------------------------

    def pending(self, limit: int) -> tuple[list[PendingTask], int]:
        """Up to ``limit`` tasks not known to have started, by state, and how many there are:
        waiting for arguments, for a lease, or pushed to a worker (it reports them when they start)."""
        queued = [task for queue in self._queues.values() for task in queue.tasks] + list(self._backoff.values())
        total = len(self._waiting) + len(queued) + len(self._running)
        groups = (
            (self._waiting.values(), "PENDING_ARGS_AVAIL"),
            (queued, "PENDING_NODE_ASSIGNMENT"),
            (self._running.values(), "SUBMITTED_TO_WORKER"),
        )
        job_id = self.rt.identity.job_id
        tasks = [
            PendingTask(spec.task_id, spec.name, job_id, b"", state, spec.created, spec.attempt)
            for specs, state in groups
            for spec in specs
        ]
        return list(itertools.islice(tasks, limit)), total

    def held_refs(self, counts: dict[bytes, int], kept: dict[bytes, int]) -> set[bytes]:
        """Add to ``counts`` the refs that tasks not finished hold (arguments, nested refs), to
        ``kept`` those of finished tasks kept to recompute their results; return those results' ids."""
        unfinished = [*self._waiting.values(), *(t for q in self._queues.values() for t in q.tasks), *self._running.values()]
        unfinished += self._backoff.values()
        live = {id(spec) for spec in unfinished}
        lineage = {id(spec): spec for spec in self._lineage.values() if id(spec) not in live}  # a task behind several results: once
        for specs, into in ((unfinished, counts), (lineage.values(), kept)):
            for spec in specs:
                for ref in (*spec.deps, *spec.nested):
                    object_id = ref.binary()
                    into[object_id] = into.get(object_id, 0) + 1
        return set(self._lineage)

    # ---- submission and dependencies --------------------------------------

    def submit(self, spec: TaskSpec) -> None:
        pending = [ref for ref in spec.deps if self.rt.entry_for(ref).value is None]
        if not pending:
            self._enqueue(spec)
            return
        self._waiting[spec.task_id] = spec
        remaining = [len(pending)]

        def one_ready() -> None:
            remaining[0] -= 1
            if remaining[0] == 0 and self._waiting.pop(spec.task_id, None) is not None:
                self._enqueue(spec)

        for ref in pending:
            if not self.rt.objects.wait_on(self.rt.entry_for(ref), CallbackWaiter(one_ready)):
                one_ready()

    def _enqueue(self, spec: TaskSpec) -> None:
        if spec.deps:
            resolved = []
            for ref in spec.deps:
                value = self.rt.objects.get(ref.binary()).value  # type: ignore[union-attr]
                if type(value) is ErrorValue:
                    self._finish(spec, [value] * spec.num_returns)  # a failed argument fails the task
                    return
                resolved.append(value)
            spec.resolved = resolved
        self._place_by_locality(spec)
        queue = self._queue(spec)
        queue.tasks.append(spec)
        self._dispatch(queue)

    def _place_by_locality(self, spec: TaskSpec) -> None:
        """With the default strategy, prefer the node holding most bytes of the task's stored
        (large) arguments: its leases are asked of that node first, in a queue of their own."""
        if spec.strategy != ("DEFAULT", b"", False) or spec.group is not None:
            return
        spec.locality = holder_of(spec.resolved)  # its key follows

    def _queue(self, spec: TaskSpec) -> _Queue:
        """The queue of ``spec``'s scheduling key (made anew if it was dropped while idle)."""
        queue = self._queues.get(spec.key)
        if queue is None:
            queue = self._queues[spec.key] = _Queue(spec)
        return queue

    # ---- leases and pushing ---------------------------------------------------

    def _short(self, spec: TaskSpec) -> bool:
        return self._durations.get(spec.fn.fn_id, math.inf) < SHORT_TASK

    def _dispatch(self, queue: _Queue) -> None:
        """Push queued tasks to leases; ask for more leases if tasks remain.

        A task goes to an idle lease, or, if its function is known to be
        short, behind other short tasks (up to PIPELINE_DEPTH); never
        behind a task that may be long.
        """
        tasks = queue.tasks
        spread = queue.strategy[0] == "SPREAD"  # one task per lease: each is placed on its own
        while tasks:
            short = self._short(tasks[0]) and not spread
            best = None
            for lease in queue.leases:
                load = len(lease.inflight)
                if spread and lease.used:
                    continue
                if load == 0 or (short and not lease.slow and load < PIPELINE_DEPTH):
                    if best is None or load < len(best.inflight):
                        best = lease
            if best is None:
                break
            best.used = True
            self._push(best, tasks.popleft(), short)
        if tasks:
            depth = PIPELINE_DEPTH if self._short(tasks[0]) and not spread else 1
            wanted = min(MAX_LEASE_REQUESTS, math.ceil(len(tasks) / depth))
            if queue.locality and queue.requesting < wanted:
                self._return_idle_on(queue.locality)
            while queue.requesting < wanted:
                queue.requesting += 1
                self.rt.nursery.start_soon(self._lease, queue)

    async def _lease(self, queue: _Queue) -> None:
        """Get one lease for ``queue`` and dispatch again, whatever happened.

        Every way out re-runs dispatch: with a new lease to push to, or with tasks that
        still need one (a refused or failed request must not leave them waiting for the next
        task of their shape). A node or worker that cannot be reached is retried with
        backoff; after LEASE_GIVE_UP seconds of nothing but failures, the queued tasks fail.
        """
        lease = None
        try:
            lease = await self._request_lease(queue)
        except (ConnectionError, trio.ClosedResourceError) as exc:  # ConnectionFailed, a lost node link
            await self._lease_failed(queue, exc)
        finally:
            queue.requesting -= 1
        if lease is not None:
            queue.failing_since = None
            queue.leases.append(lease)
        if not self.rt.closed:
            self._dispatch(queue)

    async def _request_lease(self, queue: _Queue) -> _Lease | None:
        """Ask the local node for a lease; follow spillbacks to the node it names; connect to
        the worker granted. None: refused (its tasks were failed, or it is worth asking again).
        Raises ConnectionError (ConnectionFailed) if a node or the worker cannot be reached."""
        ident = self.rt.identity
        name = queue.tasks[0].name if queue.tasks else ""
        strategy, affinity, soft = queue.strategy
        if queue.group is not None:
            node = await self._group_node(queue, name)
            if node is None:
                return None
            affinity, soft = node, False
        link = self.rt.peers.local
        assert link is not None
        spilled = False
        while True:  # a queued request may be sent on again, to a node where room appeared
            reply = await link.request(
                lambda req: RequestLease(
                    req=req, shape=queue.shape, env=queue.env, job_id=ident.job_id, name=name,
                    strategy=strategy, node_affinity=affinity, soft=soft, spilled=spilled,
                    locality=queue.locality, retriable=queue.retriable,
                )  # fmt: skip
            )
            if not (isinstance(reply, LeaseRefused) and reply.kind in ("spillback", "locality")):
                break
            link = await self.rt.peers.node_link(reply.message)
            spilled = spilled or reply.kind == "spillback"  # the holder of the arguments decides afresh
        if isinstance(reply, LeaseGranted) and reply.node_id in self._dead_nodes:
            _return_quietly(link, ReturnLease(lease_id=reply.lease_id, kill=True))  # from a node declared dead
            return None
        if isinstance(reply, LeaseRefused):
            if queue.group is not None and reply.kind == "node_gone" and queue.retries < GROUP_RETRIES:
                queue.retries += 1  # its bundle's node died just now: the group is being placed again
                await trio.sleep(0.2)
                return None
            self._refused(queue, reply)
            return None
        try:
            channel = await self.rt.peers.channel_to(reply.address)
        except ConnectionFailed:
            link.send(ReturnLease(lease_id=reply.lease_id, kill=True))  # frozen or gone: not ours to use
            raise
        return _Lease(reply, channel, queue, link)

    async def _lease_failed(self, queue: _Queue, error: BaseException) -> None:
        """A lease request failed on the way (a node or the worker granted was unreachable):
        wait a little before the next one; fail the queued tasks once it has gone on too long."""
        now = trio.current_time()
        if queue.failing_since is None:
            queue.failing_since, queue.failures = now, 0
        queue.failures += 1
        if now - queue.failing_since >= LEASE_GIVE_UP:
            log.warning("giving up on leases for %d queued tasks: %s", len(queue.tasks), error)
            self._refused(queue, LeaseRefused(req=0, kind="unreachable", message=f"no worker could be reached for {LEASE_GIVE_UP:g}s: {error}"))
            queue.failing_since = None
            return
        log.info("lease request failed (%s); asking again", error)
        await trio.sleep(min(LEASE_RETRY * 2 ** (queue.failures - 1), LEASE_RETRY_MAX))

    async def _group_node(self, queue: _Queue, name: str) -> bytes | None:
        """The node of the queue's bundle once its placement group exists (None: it never will)."""
        assert queue.group is not None
        pg_id, index = queue.group
        # Answered once the group is placed (or removed): as long as that takes.
        reply = await self.rt.head.request(lambda req: WaitPlacementGroup(req=req, pg_id=pg_id), long=True)
        view = reply.view
        message = ""
        if view is None or view.state == "REMOVED":
            message = f"{name}() was to run in placement group {pg_id.hex()}, which was removed"
        elif index >= len(view.nodes):
            message = f"{name}() asks for bundle {index} of a placement group of {len(view.nodes)} bundles"
        if message:
            self._refused(queue, LeaseRefused(req=0, kind="placement_group", message=message))
            return None
        if index >= 0:
            return view.nodes[index]
        nodes = list(dict.fromkeys(view.nodes))
        queue.turn += 1
        return nodes[queue.turn % len(nodes)]

    def _refused(self, queue: _Queue, reply: LeaseRefused) -> None:
        error: Exception
        if reply.kind == "placement_group":
            error = TaskUnschedulableError(reply.message)
        elif reply.kind in ("infeasible", "node_gone"):
            error = InfeasibleResourcesError(reply.message)
        else:
            error = WorkerStartError(reply.message)
        while queue.tasks:
            spec = queue.tasks.popleft()
            self._finish(spec, [box_system(error)] * spec.num_returns)

    def _push(self, lease: _Lease, spec: TaskSpec, short: bool) -> None:
        ident = self.rt.identity
        sent = self._sent_fns.setdefault(lease.channel, set())
        task_id = spec.task_id  # derived: once
        fn_id = spec.fn.fn_id
        message = PushTask(
            task_id=task_id,
            fn_id=fn_id,
            fn_blob=None if fn_id in sent else spec.fn.blob,
            name=spec.name,
            args=spec.args,
            resolved=spec.resolved,
            num_returns=spec.num_returns,
            job_id=ident.job_id,
            owner=ident.address,
            owner_id=ident.core_id,
            attempt=spec.attempt,
            streaming=spec.streaming,
            gpu_ids=lease.gpu_ids,
            placement_group=spec.group[0] if spec.group is not None else b"",
            capture_child_tasks=spec.capture,
            nested=[(ref.binary(), ref.owner_address) for ref in spec.nested] if spec.nested else [],
            namespace=ident.namespace,
            resources=spec.shape,
        )
        lease.inflight[task_id] = spec
        if not short:
            lease.slow.add(task_id)
        spec.lease = lease
        self._running[task_id] = spec
        try:
            lease.channel.send_nowait(message)
        except trio.ClosedResourceError:
            return  # on_channel_lost retries it
        sent.add(fn_id)

    @property
    def idle(self) -> bool:
        """No task is queued or running and no lease is held or asked for."""
        return not self._queues

    def return_idle_leases(self) -> None:
        """Give back leases unused for LEASE_IDLE seconds (called periodically); drop the
        queues left with nothing to do, so that only busy scheduling keys are kept (and scanned)."""
        now = trio.current_time()
        for key, queue in list(self._queues.items()):
            if queue.tasks:
                continue
            for lease in list(queue.leases):
                if not lease.inflight and now - lease.idle_since >= LEASE_IDLE:
                    queue.leases.remove(lease)
                    self._send_node(lease, ReturnLease(lease_id=lease.lease_id))
            if not queue.leases and not queue.requesting:
                del self._queues[key]  # a later task of this key makes a new one

    def _return_idle_on(self, node_id: bytes) -> None:
        """Give back at once this process's idle leases on ``node_id`` (of queues with nothing
        queued): a task is about to ask that node for a lease, for its arguments are there —
        typically just made by the task whose lease is now idle."""
        for queue in self._queues.values():
            if queue.tasks:
                continue
            for lease in [lease for lease in queue.leases if lease.node_id == node_id and not lease.inflight]:
                queue.leases.remove(lease)
                self._send_node(lease, ReturnLease(lease_id=lease.lease_id))

    def _send_node(self, lease: _Lease, message: Any) -> None:
        try:
            lease.node.send(message)
        except trio.ClosedResourceError:
            pass

    # ---- results ----------------------------------------------------------------

    def on_done(self, done: TaskDone) -> bool:
        """A task finished (False: not one of this submitter's)."""
        spec = self._running.pop(done.task_id, None)
        if spec is None:
            return False
        self._finished_on_lease(spec, done.elapsed)
        if self._retry_error(spec, done.returns):
            spec.attempt += 1
            self._queue(spec).tasks.append(spec)
        elif self._argument_lost(spec, done.returns):
            pass  # submitted again, once the argument is recomputed or refetched
        else:
            self._finish(spec, done.returns)
        self._dispatch(self._queue(spec))
        return True

    def on_stream_end(self, end: Any) -> bool:
        """A streaming task ended (its items went to the stream table)."""
        spec = self._running.pop(end.task_id, None)
        if spec is None:
            return False
        self._finished_on_lease(spec, 0.0)
        self._dispatch(self._queue(spec))
        return True

    def _finished_on_lease(self, spec: TaskSpec, elapsed: float) -> None:
        lease = spec.lease
        assert lease is not None
        task_id = spec.task_id
        del lease.inflight[task_id]
        if lease.slow:
            lease.slow.discard(task_id)
        spec.lease = None
        if elapsed > 0.0:  # 0.0: it never ran (cancelled while queued), or a stream
            fn_id = spec.fn.fn_id
            average = self._durations.get(fn_id)
            self._durations[fn_id] = elapsed if average is None else 0.8 * average + 0.2 * elapsed
        if not lease.inflight:
            lease.idle_since = trio.current_time()
            if lease.queue.strategy[0] == "SPREAD" and lease in lease.queue.leases:
                lease.queue.leases.remove(lease)
                self._send_node(lease, ReturnLease(lease_id=lease.lease_id))

    def _retry_error(self, spec: TaskSpec, returns: list[Value]) -> bool:
        if not spec.retry_exceptions or spec in self._cancelled or not returns or type(returns[0]) is not ErrorValue:
            return False
        if spec.max_retries != -1 and spec.attempt >= spec.max_retries:
            return False
        cause = boxed_type(returns[0])  # type: ignore[arg-type]
        if cause is None or not issubclass(cause, Exception) or issubclass(cause, TaskCancelledError):
            return False
        return spec.retry_exceptions is True or issubclass(cause, spec.retry_exceptions)  # type: ignore[arg-type]

    def _argument_lost(self, spec: TaskSpec, returns: list[Value]) -> bool:
        """The worker could not read one of the task's stored arguments (its node died, say):
        recover that argument as a get() would, and submit the task again (as a retry)."""
        if not spec.deps or not returns or type(returns[0]) is not ErrorValue or spec in self._cancelled:
            return False
        if spec.max_retries != -1 and spec.attempt >= spec.max_retries:
            return False
        stored_id = getattr(unbox(returns[0]), LOST_ARGUMENT, None)  # type: ignore[arg-type]
        if stored_id is None:
            return False
        for ref, value in zip(spec.deps, spec.resolved):
            if type(value) is Stored and value.object_id == stored_id:
                break
        else:
            return False
        spec.attempt += 1
        log.info("argument %s of %s() could not be read; recovering it", ref.hex(), spec.name)
        self.rt.recover_lost(ref.binary(), value)
        self.submit(spec)  # waits for the argument, or fails with its error
        return True

    def _finish(self, spec: TaskSpec, values: list[Value]) -> None:
        if self._cancelled:
            self._cancelled.discard(spec)
        if self._oom_kills:
            self._oom_kills.pop(spec, None)
        if spec.streaming:
            spec.nested = []
            error = values[0] if values else None
            self.rt.streams.finish(spec.task_id, self.rt.streams.count(spec.task_id), error)  # type: ignore[arg-type]
            return
        complete = self.rt.objects.complete
        kept = False
        for object_id, value in zip(spec.return_ids, values):
            if complete(object_id, value):
                if type(value) is Stored and (spec.max_retries == -1 or spec.attempt < spec.max_retries):
                    self._lineage[object_id] = spec  # recomputable if its node dies
                    kept = True
            elif type(value) is Stored:
                self.rt.peers.free_stored([value])  # nobody holds a ref to it any more
        if not kept:
            spec.deps = []
            spec.nested = []
        spec.resolved = []

    def free_orphans(self, values: list[Value]) -> None:
        stored = [value for value in values if type(value) is Stored]
        if stored:
            self.rt.peers.free_stored(stored)  # type: ignore[arg-type]

    # ---- failures ----------------------------------------------------------------

    def on_channel_lost(self, channel: Channel) -> None:
        """A worker connection dropped: its tasks are retried or fail as crashed."""
        self._sent_fns.pop(channel, None)
        lost = {id(spec.lease): spec.lease for spec in self._running.values() if spec.lease and spec.lease.channel is channel}
        for queue in self._queues.values():
            for lease in [lease for lease in queue.leases if lease.channel is channel]:
                queue.leases.remove(lease)
                lost[id(lease)] = lease
        for lease in lost.values():
            self.rt.nursery.start_soon(self._recover, lease)

    def node_died(self, node_id: bytes) -> None:
        """The head says a node is dead: drop the connections to its workers (their tasks are
        then retried elsewhere), even if the network never reports them broken; a lease it
        still grants (a node back from a freeze) is returned at once (``Peers.node_died``
        fails the requests waiting there); recompute the results only that node held, or
        mark them lost."""
        self._dead_nodes.add(node_id)
        self.node_lost(node_id)

    def node_lost(self, node_id: bytes) -> None:
        """What ``node_died`` does, but the node's id may live on (the head's node, when the head
        restarts, comes back under its id with nothing of what it held)."""
        for queue in self._queues.values():
            for lease in queue.leases:
                if lease.node_id == node_id:
                    self.rt.nursery.start_soon(lease.channel.aclose)
        for object_id, value in self.rt.objects.stored_on(node_id):
            if not self.reconstruct(object_id, value):
                self.rt.objects.replace(object_id, value, box_system(_lost(object_id, node_id, "")))

    # ---- lineage ------------------------------------------------------------------

    def reconstruct(self, object_id: bytes, lost: Stored) -> bool:
        """Run again the task whose stored result ``lost`` is gone; False if it cannot be
        (a put() object, an actor's result, retries used up, or lineage already released)."""
        spec = self._lineage.get(object_id)
        if spec is None:
            return False
        entry = self.rt.objects.get(object_id)
        if entry is None:
            return False
        if entry.value is None:
            return True  # already being recomputed
        if entry.value is not lost:
            return True  # already recomputed: read it again
        if spec.max_retries != -1 and spec.attempt >= spec.max_retries:
            return False
        spec.attempt += 1
        for return_id in spec.return_ids:  # every result of the task that lived on that node
            other = self.rt.objects.get(return_id)
            if other is not None and type(other.value) is Stored and other.value.node_id == lost.node_id:
                self.rt.objects.replace(return_id, other.value, None)
                self._lineage.pop(return_id, None)
        log.info("recomputing %s() for object %s, lost with its node", spec.name, object_id.hex())
        self.submit(spec)  # its own arguments may be recomputed first
        return True

    def forget(self, object_ids: list[bytes]) -> None:
        """These results are no longer referenced: their tasks need not be kept. (By the refs'
        ids: a Stored value's ``object_id`` is its key in the store, which the worker chose.)"""
        for object_id in object_ids:
            spec = self._lineage.pop(object_id, None)
            if spec is not None and not any(rid in self._lineage for rid in spec.return_ids):
                spec.deps = []
                spec.nested = []

    async def _recover(self, lease: _Lease) -> None:
        reason = "its connection was lost"
        with trio.move_on_after(EXIT_QUERY_TIMEOUT):
            try:
                reply = await lease.node.request(lambda req: WorkerExitQuery(req=req, worker_id=lease.worker_id))
                reason = reply.reason
            except (ConnectionError, trio.ClosedResourceError):
                pass  # the node is gone too: the reason stays "its connection was lost"
        retried: dict[str, _Queue] = {}
        oom = reason.startswith(OOM_KILLED)
        later: list[TaskSpec] = []
        for spec in list(lease.inflight.values()):
            self._running.pop(spec.task_id, None)
            spec.lease = None
            if spec in self._cancelled:
                self._finish(spec, [box_system(TaskCancelledError(f"task {spec.name}() was cancelled"))] * spec.num_returns)
            elif not spec.streaming and (spec.max_retries == -1 or spec.attempt < spec.max_retries):
                spec.attempt += 1
                if oom:
                    later.append(spec)  # memory is short now: run it again after a while
                    continue
                queue = retried[spec.key] = self._queue(spec)  # the lease's may have been dropped meanwhile
                queue.tasks.append(spec)
            else:
                tries = spec.attempt + 1
                kind = OutOfMemoryError if oom else WorkerCrashedError
                error = kind(
                    f"the worker (pid {lease.pid}) running {spec.name}() died: {reason}; "
                    f"the task was tried {tries} time{'s' if tries > 1 else ''} (max_retries={spec.max_retries})"
                )
                self._finish(spec, [box_system(error)] * spec.num_returns)
        lease.inflight.clear()
        lease.slow.clear()
        for queue in retried.values():
            self._dispatch(queue)
        for spec in later:
            self.rt.nursery.start_soon(self._retry_after_oom, spec)

    async def _retry_after_oom(self, spec: TaskSpec) -> None:
        """Queue a task killed for memory again after a backoff (1 s, doubling per kill)."""
        kills = self._oom_kills[spec] = self._oom_kills.get(spec, 0) + 1
        delay = min(OOM_RETRY * 2 ** (kills - 1), OOM_RETRY_MAX)
        log.info("%s() was killed by a node's memory monitor; running it again in %gs", spec.name, delay)
        self._backoff[spec.task_id] = spec
        await trio.sleep(delay)
        if self._backoff.pop(spec.task_id, None) is None:
            return  # cancelled meanwhile (and finished as such)
        queue = self._queue(spec)
        queue.tasks.append(spec)
        self._dispatch(queue)

    # ---- cancellation --------------------------------------------------------------

    def cancel_children(self, parent: bytes) -> None:
        """Cancel (recursively) every task this process submitted while running task ``parent``."""
        children = [spec.task_id for spec in (*self._waiting.values(), *self._backoff.values()) if spec.parent == parent]
        children += [spec.task_id for queue in self._queues.values() for spec in queue.tasks if spec.parent == parent]
        children += [spec.task_id for spec in self._running.values() if spec.parent == parent]
        for task_id in children:
            self.cancel(task_id, force=False, recursive=True)

    def cancel(self, task_id: bytes, force: bool, recursive: bool = False) -> None:
        """Cancel a task this process submitted: drop it if queued, interrupt it if running
        (``recursive``: the tasks it submitted are cancelled too, by the worker running it;
        ``force`` kills that worker, and with it the leases of everything it submitted)."""
        cancelled = [box_system(TaskCancelledError("the task was cancelled before it ran"))]
        spec = self._waiting.pop(task_id, None) or self._backoff.pop(task_id, None)
        if spec is not None:
            self._finish(spec, cancelled * spec.num_returns)
            return
        for queue in self._queues.values():
            for spec in queue.tasks:
                if spec.task_id == task_id:
                    queue.tasks.remove(spec)
                    self._finish(spec, cancelled * spec.num_returns)
                    return
        spec = self._running.get(task_id)
        if spec is None or spec.lease is None:
            return
        self._cancelled.add(spec)
        if force:
            lease = spec.lease
            if lease in lease.queue.leases:
                lease.queue.leases.remove(lease)  # push nothing more to a worker about to die
            self._send_node(lease, ReturnLease(lease_id=lease.lease_id, kill=True))
        else:
            self.rt.nursery.start_soon(self._send_cancel, spec.lease.core, task_id, spec.num_returns, recursive)

    async def _send_cancel(self, address: str, task_id: bytes, num_returns: int, recursive: bool) -> None:
        try:
            channel = await self.rt.peers.channel_to(address)
            channel.send_nowait(CancelTask(task_id=task_id, num_returns=num_returns, recursive=recursive))
        except (ConnectionFailed, trio.ClosedResourceError):
            pass  # the worker is gone: the task fails (and is not retried) when its channel closes


def holder_of(values: list[Value]) -> bytes:
    """The node holding most bytes of the stored values among ``values`` (b"": none is stored).
    Ties go to the first such node met."""
    held: dict[bytes, int] = {}
    for value in values:
        if type(value) is Stored:
            held[value.node_id] = held.get(value.node_id, 0) + value.size
    return max(held, key=held.__getitem__) if held else b""


def _return_quietly(link: Any, message: ReturnLease) -> None:
    try:
        link.send(message)
    except (trio.ClosedResourceError, trio.BrokenResourceError):
        pass  # its node is gone: the lease went with it


def _lost(object_id: bytes, node_id: bytes, why: str) -> ObjectLostError:
    reason = why or "it is not the result of a task that can run again (put() objects, actor results and tasks out of retries are not recomputed)"
    return ObjectLostError(f"object {object_id.hex()} was only on node {node_id.hex()}, which died, and {reason}")

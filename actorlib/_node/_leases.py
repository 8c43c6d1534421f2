"""Worker leases: the node's resource ledger, its queue of lease requests, and grants."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections import deque
from collections.abc import Callable

import trio

from .. import _ids
from .._placement import bundle_resources, gpus_of, of_group
from .._wire import Channel, Demand, LeaseGranted, LeaseRefused, NodeView, RequestLease
from . import _resources as res
from ._gpus import GpuIds
from ._pool import Worker, WorkerPool, env_key

MAX_CONCURRENT_STARTS = 4
# Seconds a request for a task whose large arguments are here waits for room here before it may
# be sent to a node with room (the owner's lease of the task that made them is often about to end).
LOCALITY_WAIT = 0.2


class _Request:
    __slots__ = ("req", "shape", "env", "key", "channel", "name", "message", "since")

    def __init__(self, message: RequestLease, channel: Channel) -> None:
        self.since = time.monotonic()
        self.req = message.req
        self.shape = res.normalize(message.shape)
        self.env = dict(message.env)
        self.key = env_key(self.env)
        self.channel = channel
        self.name = message.name
        self.message = message


class Lease:
    """A worker lent to one owner, and the resources it holds."""

    __slots__ = ("lease_id", "worker", "shape", "channel", "blocked", "gpu_ids", "job_id", "name", "granted", "retriable")

    def __init__(self, worker: Worker, shape: dict[str, float], channel: Channel, gpu_ids: list[str]) -> None:
        self.lease_id = _ids.unique_id()
        self.worker = worker
        self.shape = shape
        self.channel = channel
        self.blocked = False
        self.gpu_ids = gpu_ids
        self.job_id = ""  # the job that asked for it, and for which function (the state API shows them)
        self.granted = time.monotonic()  # the memory monitor kills the most recently started first,
        self.retriable = True  # retriable ones before the others
        self.name = ""


class _Bundles:
    """The bundles of one placement group on this node: prepared, then committed."""

    __slots__ = ("shapes", "committed")

    def __init__(self) -> None:
        self.shapes: dict[int, dict[str, float]] = {}
        self.committed: set[int] = set()


class LeaseManager:
    """Grants leases in request order as resources and idle workers allow."""

    def __init__(
        self,
        total: dict[str, float],
        pool: WorkerPool,
        node_id: bytes = b"",
        cluster: Callable[[], list[NodeView]] = lambda: [],
        gpu_ids: list[str] | None = None,
    ) -> None:
        self.total = total  # shared with the node: placement groups add and remove resources
        self.available = dict(total)
        self.bundles: dict[bytes, _Bundles] = {}  # placement group id -> its bundles here
        self.pool = pool
        self.node_id = node_id
        self.cluster = cluster  # every live node, as last known (for spillback)
        gpus = total.get(res.GPU, 0.0)
        self.gpus = GpuIds(gpu_ids if gpu_ids else [str(i) for i in range(int(gpus + 0.9999))])
        self._spread = itertools.count()
        self.leases: dict[bytes, Lease] = {}
        self._queue: deque[_Request] = deque()
        self._freed = trio.Event()
        # With an autoscaler: the resources of node types it could add. A request that no node
        # here can run but one of those could waits (and is reported as demand) instead of failing.
        self.node_types: Callable[[], list[dict[str, float]]] = lambda: []
        self.draining = False  # the autoscaler will stop this node: grant nothing new
        # After a head restart, while the nodes it knew may still register again: a request no
        # node known so far can run waits (rebalance sends it on when one comes back) ...
        self.settling: Callable[[], bool] = lambda: False
        self._waited_settling = False  # ... and is refused once they had their chance

    @property
    def pending(self) -> int:
        return len(self._queue)

    def demands(self) -> list[Demand]:
        """The queued lease requests, counted by shape."""
        return count_demands([request.shape for request in self._queue], "task")

    def request(self, message: RequestLease, channel: Channel) -> None:
        request = _Request(message, channel)
        holder = None if message.spilled else self._holder(request)
        if holder is not None:  # the node with its arguments decides, as if it had been asked first
            _send(channel, LeaseRefused(req=request.req, kind="locality", message=holder.address))
            return
        elsewhere = None if message.spilled else self._elsewhere(request)
        if elsewhere is not None:
            _send(channel, LeaseRefused(req=request.req, kind="spillback", message=elsewhere.address))
            return
        reason = self._refusal(request)
        if reason is not None and not self._may_wait(request):
            gone = message.node_affinity and message.node_affinity != self.node_id and not message.soft
            kind = "node_gone" if gone else "infeasible"  # owners of placement group tasks ask again
            _send(channel, LeaseRefused(req=request.req, kind=kind, message=reason))
            return
        self._queue.append(request)
        self.schedule()

    def _holder(self, request: _Request) -> NodeView | None:
        """The other node holding most bytes of the task's large arguments, if it is alive, takes
        work and could ever run the task (it grants the lease if it has room, else spills it back
        as usual); None: decide here."""
        locality = request.message.locality
        if not locality or locality == self.node_id or request.message.node_affinity:
            return None
        for node in self.cluster():
            if node.node_id == locality:
                usable = node.alive and not node.draining and res.infeasible_reason(request.shape, node.total) is None
                return node if usable else None
        return None

    def _elsewhere(self, request: _Request) -> NodeView | None:
        """The node this request should go to instead, if not this one (spillback)."""
        message = request.message
        others = [n for n in self.cluster() if n.alive and n.node_id != self.node_id and not n.draining]
        if message.node_affinity:
            target = next((n for n in others if n.node_id == message.node_affinity), None)
            if target is not None or not message.soft or message.node_affinity == self.node_id:
                return target
        feasible_here = not self.draining and res.infeasible_reason(request.shape, self.total) is None
        candidates = [n for n in others if res.infeasible_reason(request.shape, n.total) is None]
        free = [n for n in candidates if res.fits(request.shape, n.available)]
        if not feasible_here:
            return (free or candidates or [None])[0]
        if message.strategy == "SPREAD":  # round-robin over every node that can run it
            turn = next(self._spread) % (len(candidates) + 1)
            return candidates[turn - 1] if turn else None
        if message.locality == self.node_id:
            return None  # its arguments are here: wait a little for room (rebalance moves it later)
        if not res.fits(request.shape, self.available) and free:
            return max(free, key=lambda n: n.available.get(res.CPU, 0.0))  # busy here, free there
        return None

    def _refusal(self, request: _Request) -> str | None:
        message = request.message
        if message.node_affinity and message.node_affinity != self.node_id and not message.soft:
            return f"{message.name}() must run on node {message.node_affinity.hex()}, which is not alive"
        reason = res.infeasible_reason(request.shape, self.total)
        if reason is None:
            return None
        nodes = self.cluster() or []
        totals = "; ".join(res.describe(n.total) for n in nodes) or res.describe(self.total)
        return f"{message.name}() {reason}; no node in the cluster can run it (nodes: {totals})"

    def _may_wait(self, request: _Request) -> bool:
        """Whether a request no node can run now should wait for the autoscaler to add one."""
        message = request.message
        if message.node_affinity and message.node_affinity != self.node_id and not message.soft:
            return False
        if self.settling():
            self._waited_settling = True
            return True
        return any(res.infeasible_reason(request.shape, offered) is None for offered in self.node_types())

    def set_draining(self, draining: bool) -> None:
        self.draining = draining
        if draining:
            self.rebalance()
        else:
            self.schedule()

    def rebalance(self) -> None:
        """Send queued requests that cannot run here now to a node where they can: one that
        joined (the autoscaler added it), or one whose resources freed. Called periodically."""
        if self._waited_settling and not self.settling():
            self._refuse_infeasible()
        others = [n for n in self.cluster() if n.alive and n.node_id != self.node_id and not n.draining]
        if not self._queue or not others:
            return
        free = {n.node_id: dict(n.available) for n in others}
        kept: deque[_Request] = deque()
        for request in self._queue:
            target = None if request.channel.closed else self._better_node(request, others, free)
            if target is None:
                kept.append(request)
                continue
            res.subtract(free[target.node_id], request.shape)
            _send(request.channel, LeaseRefused(req=request.req, kind="spillback", message=target.address))
        self._queue = kept

    def _refuse_infeasible(self) -> None:
        """The restarted head's old nodes had their chance to come back: refuse what no node
        (nor a node type the autoscaler could add) can run, as it would have been at once."""
        self._waited_settling = False
        kept: deque[_Request] = deque()
        for request in self._queue:
            if self._elsewhere(request) is None and (reason := self._refusal(request)) and not self._may_wait(request):
                _send(request.channel, LeaseRefused(req=request.req, kind="infeasible", message=reason))
            else:
                kept.append(request)
        self._queue = kept

    def _better_node(self, request: _Request, others: list[NodeView], free: dict[bytes, dict[str, float]]) -> NodeView | None:
        if request.message.node_affinity or (not self.draining and self._fits(request.shape)):
            return None
        if request.message.locality == self.node_id and not self.draining and time.monotonic() - request.since < LOCALITY_WAIT:
            return None
        feasible = [n for n in others if res.infeasible_reason(request.shape, n.total) is None]
        with_room = next((n for n in feasible if res.fits(request.shape, free[n.node_id])), None)
        never_here = self.draining or res.infeasible_reason(request.shape, self.total) is not None
        return with_room or (feasible[0] if never_here and feasible else None)

    def schedule(self) -> None:
        """Grant what fits; start workers for requests that fit but lack one."""
        if self.draining:
            return  # queued requests wait for the drain to be called off (or move elsewhere)
        wanted: dict[str, tuple[int, dict[str, str]]] = {}
        waiting: deque[_Request] = deque()
        for request in self._queue:
            if request.channel.closed:
                continue
            if not self._fits(request.shape):
                waiting.append(request)
                continue
            worker = self.pool.take_idle(request.key)
            if worker is None:
                count, _ = wanted.get(request.key, (0, request.env))
                wanted[request.key] = (count + 1, request.env)
                waiting.append(request)
                continue
            self._grant(request, worker)
        self._queue = waiting
        self._start_workers(wanted)

    def _fits(self, shape: dict[str, float]) -> bool:
        return res.fits(shape, self.available) and self.gpus.fits(gpus_of(shape))

    def _grant(self, request: _Request, worker: Worker) -> None:
        lease = Lease(worker, request.shape, request.channel, self.gpus.take(gpus_of(request.shape)))
        lease.job_id, lease.name = request.message.job_id, request.name
        lease.retriable = request.message.retriable
        res.subtract(self.available, lease.shape)
        worker.state = "leased"
        worker.lease = lease
        self.leases[lease.lease_id] = lease
        granted = LeaseGranted(
            req=request.req,
            lease_id=lease.lease_id,
            worker_id=worker.worker_id,
            address=worker.exec,
            pid=worker.pid,
            core_address=worker.core,
            node_id=self.node_id,
            gpu_ids=lease.gpu_ids,
        )
        if not _send(request.channel, granted):
            self.release(lease.lease_id, kill=False)

    def _start_workers(self, wanted: dict[str, tuple[int, dict[str, str]]]) -> None:
        starting_total = sum(self.pool.starting(key) for key in wanted)
        for key, (count, env) in wanted.items():
            failure = self.pool.gave_up(key)
            if failure is not None:
                self._refuse_env(key, f"worker processes fail to start: {failure}")
                continue
            missing = count - self.pool.starting(key)
            while missing > 0 and starting_total < MAX_CONCURRENT_STARTS:
                self.pool.start(env)
                missing -= 1
                starting_total += 1

    def _refuse_env(self, key: str, message: str) -> None:
        self.pool.failures.pop(key, None)
        refused = [r for r in self._queue if r.key == key]
        self._queue = deque(r for r in self._queue if r.key != key)
        for request in refused:
            _send(request.channel, LeaseRefused(req=request.req, kind="worker_start", message=message))

    def release(self, lease_id: bytes, kill: bool) -> None:
        """The owner is done with a lease; reuse its worker or kill it."""
        lease = self.leases.pop(lease_id, None)
        if lease is None:
            return
        self._give_back(lease)
        worker = lease.worker
        worker.lease = None
        if kill:
            _kill(worker)
            self.pool.stop(worker, "killed on request (force cancel)")
        elif worker.state == "leased":
            worker.state = "idle"
            worker.idle_since = trio.current_time()
        self.schedule()

    def _give_back(self, lease: Lease) -> None:
        shape = lease.shape
        if lease.blocked:
            shape = {k: v for k, v in shape.items() if k != res.CPU}
        self.give_back(shape, lease.gpu_ids)
        lease.gpu_ids = []

    def give_back(self, shape: dict[str, float], gpu_ids: list[str] = ()) -> None:  # type: ignore[assignment]
        """Return resources (and the GPU ids behind them) to the ledger."""
        res.add(self.available, {name: qty for name, qty in shape.items() if name in self.total})  # not a removed group's
        if gpu_ids:
            self.gpus.give_back(list(gpu_ids), gpus_of(shape))
        freed, self._freed = self._freed, trio.Event()
        freed.set()

    def take_now(self, shape: dict[str, float]) -> list[str] | None:
        """Take ``shape`` if it fits now (for a job entrypoint's lifetime): its GPU ids; None if not."""
        shape = res.normalize(shape)
        if self.draining or not self._fits(shape):
            return None
        res.subtract(self.available, shape)
        return self.gpus.take(gpus_of(shape))

    async def reserve(self, shape: dict[str, float]) -> list[str]:
        """Wait until ``shape`` fits, then take it (for an actor's lifetime); its GPU ids. Cancellable."""
        shape = res.normalize(shape)
        while not self._fits(shape):
            gone = [name for name in shape if name not in self.total]
            if gone:
                raise LookupError(f"this node no longer offers {gone[0]} (its placement group was removed)")
            await self._freed.wait()
        res.subtract(self.available, shape)
        return self.gpus.take(gpus_of(shape))

    # ---- placement group bundles (two-phase: prepare, then commit or release) ----------------

    def prepare_bundles(self, pg_id: bytes, bundles: dict[int, dict[str, float]]) -> str:
        """Set the bundles' resources aside if they all fit now; else say why ("" when done)."""
        need: dict[str, float] = {}
        for shape in bundles.values():
            res.add(need, res.normalize(shape))
        if not self._fits(need):
            return f"node {self.node_id.hex()[:8]} has {res.describe(self.available)} free, the bundles need {res.describe(need)}"
        res.subtract(self.available, need)
        held = self.bundles.setdefault(pg_id, _Bundles())
        held.shapes.update({index: res.normalize(shape) for index, shape in bundles.items()})
        return ""

    def commit_bundles(self, pg_id: bytes) -> str:
        """Offer the prepared bundles as the group's resources."""
        held = self.bundles.get(pg_id)
        if held is None:
            return f"no bundles of placement group {pg_id.hex()} are prepared here"
        for index, shape in held.shapes.items():
            if index not in held.committed:
                offered = bundle_resources(pg_id.hex(), index, shape)
                res.add(self.total, offered)
                res.add(self.available, offered)
                held.committed.add(index)
        self.schedule()
        return ""

    def release_bundles(self, pg_id: bytes, indexes: list[int], reason: str) -> None:
        """Give up the group's bundles here (``indexes``: only these, never committed ones;
        empty: all), killing the workers leased from them and refusing requests for them."""
        held = self.bundles.get(pg_id)
        if held is None:
            return
        if indexes:  # a rolled-back prepare: nothing was offered yet
            for index in indexes:
                shape = held.shapes.pop(index, None) if index not in held.committed else None
                if shape is not None:
                    res.add(self.available, shape)
            if not held.shapes:
                del self.bundles[pg_id]
            self._changed()
            return
        del self.bundles[pg_id]
        group = pg_id.hex()
        for lease in [lease for lease in self.leases.values() if any(of_group(name, group) for name in lease.shape)]:
            self.release(lease.lease_id, kill=True)
        for name in [name for name in self.total if of_group(name, group)]:
            del self.total[name]
            self.available.pop(name, None)
        for shape in held.shapes.values():
            res.add(self.available, shape)
        refused = [r for r in self._queue if any(of_group(name, group) for name in r.shape)]
        self._queue = deque(r for r in self._queue if r not in refused)
        for request in refused:
            message = f"{request.name}() was to run in placement group {group}, which was {reason or 'removed'}"
            _send(request.channel, LeaseRefused(req=request.req, kind="placement_group", message=message))
        self._changed()

    def _changed(self) -> None:
        freed, self._freed = self._freed, trio.Event()
        freed.set()
        self.schedule()

    def set_blocked(self, worker_id: bytes, blocked: bool) -> None:
        """A leased worker waits on objects (lend its CPUs) or runs again (take them back)."""
        worker = self.pool.workers.get(worker_id)
        lease = worker.lease if worker is not None else None
        if lease is None or lease.blocked == blocked:
            return
        lease.blocked = blocked
        cpus = res.only(lease.shape, (res.CPU,))
        if blocked:
            self.give_back(cpus)
            self.schedule()
        else:
            res.subtract(self.available, cpus)

    def worker_exited(self, worker: Worker) -> None:
        lease = worker.lease
        if lease is not None and self.leases.pop(lease.lease_id, None) is not None:
            self._give_back(lease)
        worker.lease = None

    def owner_gone(self, channel: Channel) -> None:
        """A driver or worker disconnected: drop its requests, kill the workers it leased."""
        self._queue = deque(r for r in self._queue if r.channel is not channel)
        for lease in [lease for lease in self.leases.values() if lease.channel is channel]:
            self.release(lease.lease_id, kill=True)
        self.schedule()


def count_demands(shapes: list[dict[str, float]], kind: str) -> list[Demand]:
    counts: dict[str, tuple[dict[str, float], int]] = {}
    for shape in shapes:
        key = repr(sorted(shape.items()))
        counts[key] = (shape, counts.get(key, (shape, 0))[1] + 1)
    return [Demand(shape=dict(shape), count=count, kind=kind) for shape, count in counts.values()]


def _kill(worker: Worker) -> None:
    if worker.pid:
        try:
            os.killpg(worker.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _send(channel: Channel, message: object) -> bool:
    if channel.closed:
        return False
    try:
        channel.send_nowait(message)
    except trio.ClosedResourceError:
        return False
    return True

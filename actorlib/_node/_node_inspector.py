"""A node's answers to the state API: its annotated supervision tree, workers, tasks, objects, logs.

Everything comes from in-memory state (the supervisors' snapshots, the pool,
the actor host, the store, the task history) plus psutil for each process's
CPU and memory; log files are read from this node's ``<session>/logs``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import msgspec
import psutil
import trio

from .. import _state
from .._state import LogFile, NodeMemory, NodeTree, ObjectRefState, ObjectState, ProcessNode, StoredObjectState, TaskState, WorkerState
from .._wire import Channel, LogData, ObjectRefInfo, ObjectsReply, ReadLog
from ._node_stats import NodeStatsReader

FIRST_SAMPLE = 0.2  # seconds between the two readings of a process's CPU time the first time we see it
LOG_CHUNK = 256 * 1024
FOLLOW_POLL = 0.2
_encode = msgspec.msgpack.Encoder().encode


class ProcessStats:
    """CPU % (since the previous query, or over ``FIRST_SAMPLE`` for a new process) and RSS."""

    def __init__(self) -> None:
        self._processes: dict[int, psutil.Process] = {}

    async def sample(self, pids: set[int]) -> dict[int, tuple[float | None, int | None]]:
        fresh = False
        for pid in pids - set(self._processes):
            try:
                process = psutil.Process(pid)
                process.cpu_percent(None)
            except psutil.Error:
                continue
            self._processes[pid] = process
            fresh = True
        if fresh:
            await trio.sleep(FIRST_SAMPLE)
        out: dict[int, tuple[float | None, int | None]] = {}
        for pid in list(self._processes):
            process = self._processes[pid]
            if pid not in pids:
                del self._processes[pid]
                continue
            try:
                with process.oneshot():
                    out[pid] = (round(process.cpu_percent(None), 1), process.memory_info().rss)
            except psutil.Error:
                del self._processes[pid]
        return out


class NodeInspector:
    """Answers NodeQuery kinds for one NodeService."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self.stats = ProcessStats()
        self.started = time.time()
        self.numbers = NodeStatsReader(service, self.stats)

    async def query(self, kind: str) -> bytes:
        if kind == "tree":
            return _encode(await self.tree())
        if kind == "workers":
            return _encode(self.workers(await self.tree()))
        if kind == "tasks":
            return _encode(self.tasks() + await self.service.owner_tasks.pending())
        if kind == "objects":
            return _encode(self.objects())
        if kind == "logs":
            return _encode(self.log_files())
        if kind == "stats":
            return _encode(await self.numbers.read(self.pids()))
        if kind == "memory":
            return _encode(await self.memory())
        raise ValueError(f"unknown node query {kind!r}")

    # ---- the tree ------------------------------------------------------------------------

    def pids(self) -> set[int]:
        """Every process of this node's supervision tree."""
        root = self.service.root() if self.service.root is not None else None
        info = root.snapshot() if root is not None else None
        return {node.pid for node in _walk_info(info) if node.pid} if info is not None else set()

    async def tree(self) -> NodeTree:
        service = self.service
        root = service.root() if service.root is not None else None
        info = root.snapshot() if root is not None else None
        now = trio.current_time()
        pids = {os.getpid()}
        if info is not None:
            pids |= {node.pid for node in _walk_info(info) if node.pid}
        stats = await self.stats.sample(pids)
        annotate = self._annotator()
        tree = _state.from_snapshot(info, now, annotate, stats) if info is not None else None
        view = service.view()
        cpu, rss = stats.get(os.getpid(), (None, None))
        return NodeTree(
            node_id=view.node_id.hex(), hostname=view.hostname, ip=view.ip, pid=view.pid, alive=True,
            is_head=view.is_head, resources_total=view.total, resources_available=view.available,
            root=_state.bound(tree) if tree is not None else None, uptime=round(time.time() - self.started, 1),
            cpu_percent=cpu, rss=rss,
        )  # fmt: skip

    def _annotator(self) -> Any:
        service = self.service
        pool, actors, history = service.pool, service.actors, service.tasks
        actor_workers = {spec.actor_id: worker_id for spec, worker_id, _ in actors.processes()} if actors else {}
        roles = {"workers": "pool", "actors": "pool", "service": "service", "head": "head", "head-link": "head-link"}
        entrypoints = service.entrypoints

        def annotate(path: str) -> dict[str, Any]:
            parent, _, name = path.rpartition("/")
            worker = pool.by_name(name)
            if worker is not None:
                lease = worker.lease
                running = history.running(worker.worker_id)
                job = (lease.job_id if lease is not None else "") or (running[0].job_id if running else "")
                return {
                    "role": "worker", "worker_state": worker.state, "job_id": job,
                    "resources": dict(lease.shape) if lease is not None else {},
                    "task": running[0].name if running else "",
                }  # fmt: skip
            is_process = name == "process"
            spec = actors.spec_of(parent.rpartition("/")[2] if is_process else name) if actors else None
            if spec is not None:
                extra = {
                    "actor_id": spec.actor_id.hex(), "class_name": spec.class_name, "actor_name": spec.name,
                    "job_id": spec.job_id,
                }  # fmt: skip
                if is_process or spec.group is not None:
                    running = history.running(actor_workers.get(spec.actor_id, b""))
                    extra.update(role="actor", resources=dict(spec.shape), task=running[0].name if running else "")
                else:
                    extra["role"] = "actor-supervisor"
                return extra
            if actors is not None and actors.is_group(name):
                return {"role": "group"}
            in_pool = parent.endswith("/jobs") and parent.rpartition("/")[0].rpartition("/")[2].startswith("node-")
            entry = entrypoints.spec_of(name) if entrypoints is not None and in_pool else None
            if entry is not None:  # a job's entrypoint placed here (its id holds the submission id)
                return {"role": "job", "resources": dict(entry.resources), "task": entry.entrypoint}
            if name == "jobs" and parent.rpartition("/")[2].startswith("node-"):
                return {"role": "pool"}
            if name.startswith("node-"):
                return {"role": "node"}
            role = roles.get(name)
            return {"role": role} if role else {}

        return annotate

    def workers(self, tree: NodeTree) -> list[WorkerState]:
        node_id = tree.node_id
        out = []
        for node in _state.walk(tree.root) if tree.root is not None else []:
            if node.role == "worker":
                worker = self.service.pool.by_name(node.id)
                worker_id = worker.worker_id.hex() if worker is not None else ""
                out.append(_worker_state(node, node_id, worker_id, "WORKER", (node.worker_state or "dead").upper()))
        by_actor = {spec.actor_id.hex(): worker_id for spec, worker_id, _ in self.service.actors.processes()}
        for node in _state.walk(tree.root) if tree.root is not None else []:
            if node.role == "actor" and node.pid:
                out.append(_worker_state(node, node_id, by_actor.get(node.actor_id, b"").hex(), "ACTOR", "ALIVE"))
        return out

    # ---- tasks, objects, logs --------------------------------------------------------------

    def tasks(self) -> list[TaskState]:
        service = self.service
        live = set(service.pool.workers)
        live |= {worker_id for _, worker_id, _ in service.actors.processes()} if service.actors else set()
        service.tasks.reap(live, service.pool.exits)
        return service.tasks.states()

    def objects(self) -> list[ObjectState]:
        store = self.service.store
        node_id = self.service.node_id.hex()
        if store is None:
            return []
        return [
            ObjectState(object_id=oid.hex(), node_id=node_id, object_size=size, owner_id=owner.hex(), sealed=sealed)
            for oid, size, owner, sealed, _ in store.objects()
        ]

    async def memory(self) -> NodeMemory:
        """``actorlib memory``'s part of this node: its store's objects, and the references that
        the drivers and workers connected here hold (each lists its own)."""
        service = self.service
        node_id = service.node_id.hex()
        store = service.store
        used, capacity, _ = store.stats() if store is not None else (0, 0, 0)
        stored = [
            StoredObjectState(
                object_id=oid.hex(), size=size, owner_id=owner.hex(), sealed=sealed, where="SPILLED" if spilled else "STORE"
            )
            for oid, size, owner, sealed, spilled in (store.objects() if store is not None else [])
        ]
        replies = await service.owner_tasks.objects()
        rows = [_reference(node_id, reply, info) for reply in replies for info in reply.objects]
        left_out = sum(max(0, reply.total - len(reply.objects)) for reply in replies)
        return NodeMemory(
            node_id=node_id, ip=service.view().ip, store_used=used, store_capacity=capacity, stored=stored,
            spilled_bytes=store.spilled if store is not None else 0,
            spill_limit=store.spill.limit if store is not None else 0,
            references=rows, processes=len(replies), left_out=left_out,
        )  # fmt: skip

    def log_dir(self) -> Path:
        return Path(self.service.config.session_dir) / "logs"

    def log_files(self) -> list[LogFile]:
        node_id = self.service.node_id.hex()
        out = []
        try:
            entries = list(os.scandir(self.log_dir()))
        except OSError:
            return []
        for entry in entries:
            try:
                st = entry.stat()
            except OSError:
                continue
            worker, pid, stream = parse_log_name(entry.name)
            out.append(LogFile(node_id=node_id, name=entry.name, size=st.st_size, mtime=st.st_mtime, worker=worker, pid=pid, stream=stream))
        return sorted(out, key=lambda f: -f.mtime)

    async def stream_log(self, channel: Channel, request: ReadLog) -> None:
        """Answer a ReadLog: chunks of the file, then (with ``follow``) what is appended, until the reader leaves.

        A name that is not a file of this node's logs directory, or a file that cannot be
        read, is answered with an error; it never fails the node's service.
        """
        try:
            await self._stream_log(channel, request)
        except (OSError, ValueError) as exc:
            error = f"cannot read log file {request.name!r} on this node: {exc}"
            _send(channel, LogData(req=request.req, data=b"", offset=0, end=True, error=error))

    async def _stream_log(self, channel: Channel, request: ReadLog) -> None:
        name = request.name
        path = self.log_dir() / name
        if not _plain_name(name) or not path.is_file():
            _send(channel, LogData(req=request.req, data=b"", offset=0, end=True, error=f"no log file {name!r} on this node"))
            return
        with open(path, "rb") as file:
            offset = tail_offset(file, request.tail) if request.tail >= 0 else max(0, request.offset)
            file.seek(offset)
            while not channel.closed:
                data = file.read(LOG_CHUNK)
                if data:
                    offset += len(data)
                    _send(channel, LogData(req=request.req, data=data, offset=offset))
                    await trio.sleep(0)
                elif request.follow:
                    await trio.sleep(FOLLOW_POLL)
                else:
                    _send(channel, LogData(req=request.req, data=b"", offset=offset, end=True))
                    return


def _reference(node_id: str, reply: ObjectsReply, info: ObjectRefInfo) -> ObjectRefState:
    return ObjectRefState(
        object_id=info.object_id.hex(), node_id=node_id, pid=reply.pid, holder=reply.peer,
        reference=_state.reference_type(info.local_refs, info.task_refs, info.escaped, len(info.borrowers)),
        owned=info.owned, owner=info.owner, where=info.where, size=info.size, local_refs=info.local_refs,
        task_refs=info.task_refs, lineage_refs=info.lineage_refs, borrowers=info.borrowers, escaped=info.escaped,
        lineage=info.lineage, stored_on=info.stored_node.hex(), stored_id=info.stored_id.hex(),
        actor_id=reply.actor_id.hex(),
    )  # fmt: skip


def _plain_name(name: str) -> bool:
    """A file name of the logs directory itself: no path, no hidden file, no NUL."""
    return bool(name) and "/" not in name and "\x00" not in name and not name.startswith(".")


def parse_log_name(name: str) -> tuple[str, int, str]:
    """``w-1a2b3c-1234.out`` -> (``w-1a2b3c``, 1234, ``out``); node files -> (stem, 0, suffix)."""
    stem, _, stream = name.rpartition(".")
    worker, _, pid = stem.rpartition("-")
    if worker and pid.isdigit():
        return worker, int(pid), stream
    return stem, 0, stream


def tail_offset(file: Any, lines: int) -> int:
    """The offset where the last ``lines`` lines of ``file`` start."""
    end = file.seek(0, os.SEEK_END)
    if lines == 0:
        return end
    position, found = end, 0
    while position > 0:
        step = min(65536, position)
        position -= step
        file.seek(position)
        block = file.read(step)
        if position + step == end and block.endswith(b"\n"):
            found -= 1  # the final newline ends the last line; it does not start one
        for index in range(len(block) - 1, -1, -1):
            if block[index] == 10:
                found += 1
                if found == lines:
                    return position + index + 1
    return 0


def _worker_state(node: ProcessNode, node_id: str, worker_id: str, kind: str, state: str) -> WorkerState:
    return WorkerState(
        worker_id=worker_id, node_id=node_id, pid=node.pid or 0, worker_type=kind, state=state,
        job_id=node.job_id, actor_id=node.actor_id, class_name=node.class_name, resources=node.resources,
        cpu_percent=node.cpu_percent, rss=node.rss, uptime=node.uptime,
    )  # fmt: skip


def _walk_info(info: Any) -> list[Any]:
    out = [info]
    for child in info.children:
        out += _walk_info(child)
    return out


def _send(channel: Channel, message: Any) -> None:
    if not channel.closed:
        try:
            channel.send_nowait(message)
        except trio.ClosedResourceError:
            pass

"""The state API from Python, with Ray's names (``ray.util.state``).

Every function asks the cluster's head once (``actorlib._head._state_service``), which
answers from its own records (nodes, actors, placement groups, jobs) and asks
each live node for the rest (supervision trees, workers, tasks, objects, log
files). Results are msgspec Structs: read their attributes, or turn them into
dicts with ``msgspec.to_builtins`` (``msgspec.json.encode`` works on them too).

``address``: the head to ask; by default this process's cluster if
``actorlib.init()`` ran, else ``$ACTORLIB_ADDRESS``, else the newest cluster on
this machine (``auto``). Each call blocks until the head answers (at most
``timeout`` seconds) and must not be made from inside a running Trio loop.

``filters``: ``[("state", "=", "ALIVE"), ("name", "!=", "x")]``, compared as
case-insensitive text against the Struct's field. ``limit``: at most that many
items (the newest first where order means something). Tasks come from a
bounded history each node keeps (``ACTORLIB_TASK_HISTORY``, default 10,000
finished calls per node; workers report about once a second), so a task that
finished a moment ago may not be listed yet, and old ones are forgotten.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from .._state import (
    DEFAULT_LIMIT,
    KINDS,
    ActorState,
    ClusterTree,
    JobState,
    ListResult,
    LogFile,
    MemoryResult,
    NodeMemory,
    NodeState,
    ObjectRefState,
    ObjectState,
    PlacementGroupState,
    QueryError,
    StoredObjectState,
    Summary,
    TaskState,
    WorkerState,
    check_kind,
    parse_filter,
    sort,
    unhealthy,
)
from .._wire import StateQuery
from ._state_client import DEFAULT_TIMEOUT, ask_sync, iterate_log, target

__all__ = [
    "ActorState", "ClusterTree", "JobState", "LogFile", "MemoryResult", "NodeMemory", "NodeState", "ObjectRefState",
    "ObjectState", "PlacementGroupState", "StoredObjectState",
    "DEFAULT_LIMIT", "KINDS", "ListResult", "QueryError", "StateApiError", "parse_filter", "sort", "unhealthy", "Summary", "TaskState", "WorkerState",
    "get_actor", "get_job", "get_log", "get_node", "get_placement_group", "get_task", "get_tree", "get_worker",
    "list_actors", "list_jobs", "list_logs", "list_nodes", "list_objects", "list_placement_groups", "list_tasks",
    "list_workers", "memory", "query", "summarize_actors", "summarize_objects", "summarize_tasks", "timeline",
]  # fmt: skip

Filters = Sequence[tuple[str, str, Any]] | None


class StateApiError(RuntimeError):
    """Some nodes did not answer, and ``raise_on_missing_output`` asked for all or nothing."""


def query(
    kind: str,
    *,
    address: str | None = None,
    filters: Filters = None,
    limit: int = DEFAULT_LIMIT,
    detail: bool = False,
    args: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> bytes:
    """The one entry point: the head's encoded answer to a state query (what the CLI and the
    functions below use). Raises QueryError if the query is malformed, ConnectionError if
    no cluster can be reached, TimeoutError if the head does not answer in time."""
    message = StateQuery(
        req=1, kind=kind, filters=[(str(k), str(o), str(v)) for k, o, v in filters or ()], limit=limit,
        detail=detail, args=dict(args or {}),
    )  # fmt: skip
    return ask_sync(target(address), message, timeout)


def _list(kind: str, address: str | None, filters: Filters, limit: int, detail: bool, timeout: float,
          raise_on_missing_output: bool, args: dict[str, str] | None = None) -> list[Any]:  # fmt: skip
    kind = check_kind(kind)
    payload = query(kind, address=address, filters=filters, limit=limit, detail=detail, args=args, timeout=timeout)
    result = msgspec.msgpack.decode(payload, type=ListResult[KINDS[kind]])  # type: ignore[valid-type]
    if result.partial and raise_on_missing_output:
        raise StateApiError(f"incomplete {kind} listing: {'; '.join(result.partial)}")
    return result.items


def _lister(kind: str) -> Any:
    def list_(
        address: str | None = None,
        filters: Filters = None,
        limit: int = DEFAULT_LIMIT,
        timeout: float = DEFAULT_TIMEOUT,
        detail: bool = False,
        raise_on_missing_output: bool = True,
    ) -> list[Any]:
        return _list(kind, address, filters, limit, detail, timeout, raise_on_missing_output)

    list_.__name__ = f"list_{kind}"
    list_.__doc__ = f"The cluster's {kind.replace('_', ' ')}, filtered and limited (see the module's docstring)."
    return list_


list_actors = _lister("actors")
list_tasks = _lister("tasks")
list_nodes = _lister("nodes")
list_jobs = _lister("jobs")
list_workers = _lister("workers")
list_objects = _lister("objects")
list_placement_groups = _lister("placement_groups")
list_logs = _lister("logs")


def _getter(kind: str) -> Any:
    def get(id: str, address: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Any:
        items = _list(kind, address, None, 2, True, timeout, False, args={"id": id})
        if len(items) > 1:
            raise QueryError(f"more than one of the {kind.replace('_', ' ')} has an id starting with {id!r}")
        return items[0] if items else None

    get.__name__ = f"get_{kind.rstrip('s')}"
    get.__doc__ = f"The one of the cluster's {kind.replace('_', ' ')} whose id is (or starts with) ``id``, or None."
    return get


get_actor = _getter("actors")
get_task = _getter("tasks")
get_node = _getter("nodes")
get_job = _getter("jobs")
get_worker = _getter("workers")
get_placement_group = _getter("placement_groups")


def _summary(kind: str, address: str | None, timeout: float) -> Summary:
    payload = query("summary", address=address, args={"of": kind}, timeout=timeout)
    return msgspec.msgpack.decode(payload, type=Summary)


def summarize_tasks(address: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Summary:
    """Task counts by state, and by function name and state."""
    return _summary("tasks", address, timeout)


def summarize_actors(address: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Summary:
    """Actor counts by state, and by class and state."""
    return _summary("actors", address, timeout)


def summarize_objects(address: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> Summary:
    """Objects held in the nodes' stores: counts (and bytes) per node."""
    return _summary("objects", address, timeout)


def get_tree(
    address: str | None = None, node: str | None = None, depth: int | None = None, timeout: float = DEFAULT_TIMEOUT
) -> ClusterTree:
    """Every node's supervision tree (``node``: only the node whose id starts with it; ``depth``: levels kept)."""
    args = {"node": node or "", "depth": str(-1 if depth is None else depth)}
    return msgspec.msgpack.decode(query("tree", address=address, args=args, timeout=timeout), type=ClusterTree)


def memory(address: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> MemoryResult:
    """Every live node's objects and who holds references to them (``actorlib memory``, Ray's
    ``ray memory``): the objects in its store (each with how many references the cluster
    reports), and, for every driver and worker on it, each object it holds references to:
    size, where the value lives, its owner, the kind of reference (LOCAL_REFERENCE,
    USED_BY_PENDING_TASK, CAPTURED_IN_OBJECT, BORROWED_BY_OTHERS, LINEAGE) and its borrowers."""
    return msgspec.msgpack.decode(query("memory", address=address, timeout=timeout), type=MemoryResult)


def timeline(address: str | None = None, filename: str | None = None, timeout: float = DEFAULT_TIMEOUT) -> list[dict[str, Any]]:
    """Recent tasks and actor calls as Chrome trace events (one row per worker); written to ``filename`` if given."""
    payload = query("timeline", address=address, timeout=timeout)
    if filename is not None:
        with open(filename, "wb") as file:
            file.write(payload)
    return msgspec.json.decode(payload)


def get_log(
    address: str | None = None,
    node_id: str | None = None,
    filename: str | None = None,
    actor_id: str | None = None,
    task_id: str | None = None,
    pid: int | None = None,
    suffix: str = "out",
    tail: int = -1,
    follow: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Iterator[str]:
    """Stream a log file from the node that has it, as text chunks.

    Name it by ``filename`` (with ``node_id``), or by the ``actor_id``, ``task_id`` or
    (``node_id`` and) ``pid`` of the worker that wrote it (``suffix`` out or err), or give
    ``node_id`` alone for that node's own log. ``tail``: start that many lines before the
    end; ``follow``: keep streaming what is appended until the generator is closed.
    Raises FileNotFoundError naming what could not be found.
    """
    node, name = resolve_log(address, node_id, filename, actor_id, task_id, pid, suffix, timeout)
    return iterate_log(target(address), node.address, name, tail=tail, follow=follow)


def resolve_log(
    address: str | None, node_id: str | None, filename: str | None, actor_id: str | None, task_id: str | None,
    pid: int | None, suffix: str, timeout: float = DEFAULT_TIMEOUT,
) -> tuple[NodeState, str]:  # fmt: skip
    """The node and the file name a get_log() call means."""
    if suffix not in ("out", "err"):
        raise QueryError(f"suffix must be 'out' or 'err', got {suffix!r}")
    if actor_id:
        actor = get_actor(actor_id, address, timeout)
        if actor is None:
            raise FileNotFoundError(f"no actor with id {actor_id!r}")
        if not actor.pid:
            raise FileNotFoundError(f"actor {actor_id} has no process now (it is {actor.state})")
        node_id, pid = actor.node_id, actor.pid
    elif task_id:
        task = get_task(task_id, address, timeout)
        if task is None:
            raise FileNotFoundError(f"no task with id {task_id!r} in the recent task history")
        node_id, pid = task.node_id, task.worker_pid
    if not node_id:
        raise QueryError("name a log by node_id (with filename or pid), actor_id or task_id")
    node = get_node(node_id, address, timeout)
    if node is None:
        raise FileNotFoundError(f"no node with id {node_id!r}")
    if node.state != "ALIVE":
        raise FileNotFoundError(f"node {node.node_id[:12]} is dead: its logs cannot be read through it")
    if filename:
        return node, filename
    files = list_logs(address, filters=[("node_id", "=", node.node_id)], limit=10_000, timeout=timeout)
    if pid:
        wanted = [f for f in files if f.pid == pid and f.stream == suffix]
        what = f"worker pid {pid}"
    else:
        wanted = [f for f in files if not f.pid and f.worker in ("node", "head", "daemon") and f.stream == "err"]
        what = "the node process"
    if not wanted and pid:  # its node makes a worker's log file at the first line written to it
        raise FileNotFoundError(f"{what} on node {node.node_id[:12]} has written nothing to its std{suffix} yet")
    if not wanted:
        raise FileNotFoundError(f"no .{suffix} log of {what} on node {node.node_id[:12]}")
    return node, wanted[0].name

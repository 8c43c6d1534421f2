"""The state API's schema: msgspec Structs for the tree and each listing (JSON-friendly).

Schema rules: add fields at the end with defaults, never change a field's
meaning; ``SCHEMA_VERSION`` goes up when a field is removed or renamed.
Ids are hex strings, times are seconds (wall clock for ``*_time``, a
duration for ``uptime``/``ago``), sizes are bytes.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

import msgspec

SCHEMA_VERSION = 1

T = TypeVar("T")


class _State(msgspec.Struct, kw_only=True, omit_defaults=False):
    pass


# ---- the supervision tree ------------------------------------------------------------


class ExitInfo(_State, frozen=True):
    """How one incarnation of a child ended."""

    kind: str  # normal | shutdown | abnormal
    reason: str  # "killed by SIGKILL (possible OOM)", "exit code 3", "ValueError: bad input"
    code: int | None = None
    signal: int | None = None
    error_type: str | None = None
    ago: float | None = None  # seconds before the snapshot
    traceback: str | None = None  # of an exception the child raised (or reported before it died)


class Intensity(_State, frozen=True):
    """A supervisor's restart budget and how much of it the current window used."""

    restarts: int
    max_restarts: int
    within: float | None  # seconds; None: over the supervisor's whole life


class ProcessNode(_State):
    """One supervisor or child of a process's supervision tree, with what the node knows of it."""

    id: str
    path: str
    kind: str  # supervisor | process | task
    state: str  # starting | running | restarting | stopping | stopped | failed | escalated
    restart: str = "permanent"
    pid: int | None = None
    restarts: int = 0
    uptime: float | None = None
    restart_eta: float | None = None
    last_exit: ExitInfo | None = None
    significant: bool = False
    strategy: str | None = None
    intensity: Intensity | None = None
    cpu_percent: float | None = None
    rss: int | None = None
    resources: dict[str, float] = {}
    role: str = ""  # worker | actor | group | pool | node | service | head | ...
    worker_state: str = ""  # a task worker's: starting | idle | leased
    actor_id: str = ""
    class_name: str = ""
    actor_name: str = ""
    job_id: str = ""
    task: str = ""  # the task it runs now, if the node knows
    children: list[ProcessNode] = []
    elided: int = 0  # children left out to keep the output bounded (the busiest are kept)


class NodeTree(_State):
    """One node's header and its process's supervision tree (None if it did not answer)."""

    node_id: str
    hostname: str
    ip: str
    pid: int
    alive: bool
    is_head: bool
    resources_total: dict[str, float] = {}
    resources_available: dict[str, float] = {}
    root: ProcessNode | None = None
    error: str = ""  # why the tree is missing: the node is dead, or did not answer in time
    uptime: float | None = None
    cpu_percent: float | None = None  # the node process itself
    rss: int | None = None
    seconds_since_heartbeat: float = 0.0  # as the head saw it (0 for the head's own node)


class ClusterTree(_State):
    """``actorlib tree``: every node's tree, as the head collected them."""

    nodes: list[NodeTree]
    version: int = SCHEMA_VERSION


# ---- listings (Ray's names and states) -------------------------------------------------


class NodeState(_State):
    node_id: str
    node_ip: str
    state: str  # ALIVE | DEAD
    is_head_node: bool
    node_name: str = ""
    pid: int = 0
    resources_total: dict[str, float] = {}
    resources_available: dict[str, float] = {}
    pending: int = 0
    seconds_since_heartbeat: float = 0.0
    address: str = ""  # its node service (where its logs are read)


class ActorState(_State):
    actor_id: str
    class_name: str
    state: str  # PENDING_CREATION | ALIVE | RESTARTING | DEAD
    name: str = ""
    namespace: str = ""
    job_id: str = ""
    node_id: str = ""
    pid: int = 0
    num_restarts: int = 0
    death_cause: str = ""
    is_detached: bool = False
    required_resources: dict[str, float] = {}
    placement_group_id: str = ""


class TaskState(_State):
    task_id: str
    name: str
    # Ray's names: PENDING_ARGS_AVAIL, PENDING_NODE_ASSIGNMENT, SUBMITTED_TO_WORKER and
    # PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY (from its owner), RUNNING, FINISHED, FAILED
    state: str
    type: str = "NORMAL_TASK"  # NORMAL_TASK | ACTOR_TASK
    job_id: str = ""
    actor_id: str = ""
    node_id: str = ""
    worker_id: str = ""
    worker_pid: int = 0
    attempt: int = 0
    start_time: float = 0.0
    end_time: float | None = None
    error_message: str = ""
    traceback: str = ""  # a failed call's remote traceback (its end, if long)
    creation_time: float | None = None  # when its owner submitted it (pending tasks)


class JobState(_State):
    job_id: str  # the driver's job id ("" for a submitted job whose driver has not called init())
    type: str = "DRIVER"  # DRIVER: a script that called init(); SUBMISSION: submitted through the jobs API
    status: str = "RUNNING"  # drivers: RUNNING | FINISHED; submissions: Ray's PENDING ... FAILED
    entrypoint: str = ""
    driver_pid: int = 0
    driver_ip: str = ""
    namespace: str = ""
    start_time: float = 0.0
    end_time: float | None = None
    submission_id: str = ""
    message: str = ""
    error_type: str | None = None
    driver_exit_code: int | None = None


class WorkerState(_State):
    worker_id: str
    node_id: str
    pid: int
    worker_type: str  # WORKER | ACTOR
    state: str  # STARTING | IDLE | LEASED | ALIVE
    job_id: str = ""
    actor_id: str = ""
    class_name: str = ""
    resources: dict[str, float] = {}
    cpu_percent: float | None = None
    rss: int | None = None
    uptime: float | None = None


class ObjectState(_State):
    object_id: str
    node_id: str
    object_size: int
    owner_id: str = ""
    sealed: bool = True


class PlacementGroupState(_State):
    placement_group_id: str
    state: str  # PENDING | CREATED | RESCHEDULING | REMOVED
    strategy: str
    bundles: list[dict[str, float]] = []
    bundle_nodes: list[str] = []
    name: str = ""
    namespace: str = ""
    job_id: str = ""
    is_detached: bool = False
    reason: str = ""


class LogFile(_State):
    node_id: str
    name: str  # w-1a2b3c-1234.out
    size: int
    mtime: float
    worker: str = ""  # w-1a2b3c, or the actor's key (Counter-1a2b3c)
    pid: int = 0
    stream: str = ""  # out | err


class ListResult(_State, Generic[T]):
    """A listing: at most ``limit`` items of ``total`` that matched; ``partial`` says what failed."""

    kind: str
    items: list[T]
    total: int
    partial: list[str] = []  # e.g. "node 1a2b3c did not answer"


class Summary(_State):
    """Counts by state, and by name (function or class) and state."""

    kind: str
    total: int
    by_state: dict[str, int]
    by_name: dict[str, dict[str, int]]
    partial: list[str] = []


KINDS: dict[str, type[Any]] = {
    "nodes": NodeState,
    "actors": ActorState,
    "tasks": TaskState,
    "jobs": JobState,
    "workers": WorkerState,
    "objects": ObjectState,
    "placement_groups": PlacementGroupState,
    "logs": LogFile,
}
ID_FIELDS = {
    "nodes": "node_id",
    "actors": "actor_id",
    "tasks": "task_id",
    "jobs": "job_id",
    "workers": "worker_id",
    "objects": "object_id",
    "placement_groups": "placement_group_id",
    "logs": "name",
}

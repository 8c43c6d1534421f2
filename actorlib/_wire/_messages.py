"""Every control message, as msgspec Structs in one tagged union per connection kind.

Evolving a message: add fields at the end with a default; never reorder,
retype or remove a field; never reuse a tag. Messages are encoded as arrays
(``array_like``), so field order is the schema.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

PROTOCOL_VERSION = 2  # 2: objects live in one arena per node (StorePlace, StoreRelease)
MAX_NUM_RETURNS = 100_000
TERMINATE = "__ray_terminate__"  # the actor method every actor has: Ray's graceful exit, after the calls before it
# A call's number of return values, bounded: a peer cannot make its callee build a list of
# 2**63 error replies (the decoder refuses the message; options refuse it at the caller).
Returns = Annotated[int, msgspec.Meta(ge=0, le=MAX_NUM_RETURNS)]


class Msg(msgspec.Struct, tag_field="t", frozen=True, array_like=True):
    """Base of every message."""


# ---- handshake (every connection, before anything else) ---------------------


class Hello(Msg, tag="hello"):
    """Server to client on connect: protocol version and a fresh challenge."""

    version: int
    nonce: bytes


class Auth(Msg, tag="auth"):
    """Client to server: proof of the cluster token over the server's nonce, and a nonce of its own."""

    version: int
    proof: bytes
    nonce: bytes
    peer: str


class Welcome(Msg, tag="welcome"):
    """Server to client: accepted; proves the server holds the token too."""

    proof: bytes


class Refused(Msg, tag="refused"):
    """Server to client, then close: the handshake failed, and why."""

    reason: str


Handshake = Hello | Auth | Welcome | Refused


# ---- user values -------------------------------------------------------------


class Inline(Msg, tag="inline"):
    """A small serialized value carried in the message itself."""

    data: bytes
    buffers: list[bytes] = []


class Stored(Msg, tag="stored"):
    """A large value held in the shared-memory store of node ``node_id``."""

    object_id: bytes
    node_id: bytes
    size: int
    store: str


class ErrorValue(Msg, tag="error"):
    """A boxed exception standing in for a value (see actorlib._serial._errors)."""

    data: bytes


Value = Inline | Stored | ErrorValue


class Demand(msgspec.Struct, frozen=True, array_like=True):
    """Work waiting for resources on a node: ``count`` requests of ``shape``."""

    shape: dict[str, float]
    count: int
    kind: str  # task | actor


class NodeView(msgspec.Struct, frozen=True, kw_only=True):
    """What the cluster knows of one node."""

    node_id: bytes
    address: str
    store: str
    hostname: str
    ip: str
    pid: int
    alive: bool
    total: dict[str, float]
    available: dict[str, float]
    session_dir: str
    is_head: bool = False
    pending: int = 0  # lease requests waiting there
    demands: list[Demand] = []  # what waits there for resources, by shape
    silent: float = 0.0  # seconds since its last heartbeat, as the head saw it
    labels: dict[str, str] = {}  # ``actorlib start --labels``; the autoscaler names its instances here
    busy: int = 0  # leases, actors and stored objects it holds: 0 when nothing would be lost by stopping it
    draining: bool = False  # it takes no new work: the autoscaler is about to stop it


class LaunchView(msgspec.Struct, frozen=True, kw_only=True):
    """One node the autoscaler is launching, or failed to launch."""

    instance_id: str
    node_type: str
    state: str  # launching | failed
    since: float  # wall-clock time the launch started (or failed)
    error: str = ""
    retry_in: float = 0.0  # seconds until that type is launched again (failed launches)


class AutoscalerView(msgspec.Struct, frozen=True, kw_only=True):
    """What the head's autoscaler is doing, for ``actorlib status``."""

    cluster_name: str
    provider: str
    workers: dict[str, int]  # live worker nodes per node type
    max_workers: int
    launching: list[LaunchView] = []
    failed: list[LaunchView] = []  # recent failures, newest last
    draining: list[bytes] = []  # node ids
    requested: list[dict[str, float]] = []  # request_resources() bundles
    infeasible: list[dict[str, float]] = []  # demands no node type can ever hold


class MethodInfo(msgspec.Struct, frozen=True, array_like=True):
    """How to call one actor method: its returns, and its concurrency group."""

    num_returns: Returns = 1
    streaming: bool = False
    group: str = ""
    dynamic: bool = False  # streamed, returned as one ref to all the items (num_returns="dynamic")


class GroupSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A supervision group of actors: one supervisor with an OTP strategy."""

    group_id: bytes
    name: str
    strategy: str
    max_restarts: int
    period_s: float


class PlacementGroupSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A placement group as its creator asked for it."""

    pg_id: bytes
    bundles: list[dict[str, float]]
    strategy: str
    name: str = ""
    namespace: str = ""
    detached: bool = False
    job_id: str = ""


class PlacementGroupView(msgspec.Struct, frozen=True, kw_only=True):
    """What the head knows of a placement group right now."""

    pg_id: bytes
    bundles: list[dict[str, float]]
    strategy: str
    state: str  # PENDING | CREATED | RESCHEDULING | REMOVED
    nodes: list[bytes]  # the node of each bundle (b"" while unplaced)
    name: str = ""
    namespace: str = ""
    detached: bool = False
    job_id: str = ""
    reason: str = ""  # why it is still pending, or why it was removed


class ActorSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Everything needed to create (and re-create) an actor."""

    actor_id: bytes
    class_name: str
    class_id: bytes
    class_blob: bytes
    args: Inline
    resolved: list[Inline | Stored]
    methods: dict[str, MethodInfo]
    name: str = ""
    namespace: str = ""
    detached: bool = False
    max_restarts: int = 0
    max_task_retries: int = 0
    max_concurrency: int = 1
    concurrency_groups: dict[str, int] = {}
    loop: str = "sync"  # sync | trio | asyncio
    shape: dict[str, float] = {}  # held while alive
    placement: dict[str, float] = {}  # needed to place it
    env: dict[str, str] = {}
    owner_id: bytes = b""
    job_id: str = ""
    group: GroupSpec | None = None
    strategy: str = "DEFAULT"  # DEFAULT | SPREAD
    node_affinity: bytes = b""
    soft: bool = False
    placement_group: bytes = b""  # shape and placement are then in the group's resources
    bundle_index: int = -1
    capture_child_tasks: bool = False  # its tasks and actors go into its placement group by default
    job_namespace: str = ""  # its creator's job's namespace (``namespace`` is its name's): its code runs there


class ActorView(msgspec.Struct, frozen=True, kw_only=True):
    """What the head knows of an actor right now."""

    actor_id: bytes
    state: str  # PENDING | ALIVE | RESTARTING | DEAD
    address: str = ""
    pid: int = 0
    incarnation: int = 0
    cause: str = ""
    class_name: str = ""
    name: str = ""
    namespace: str = ""
    methods: dict[str, MethodInfo] = {}
    max_task_retries: int = 0
    node_id: bytes = b""
    restarts: int = 0
    job_id: str = ""
    detached: bool = False
    resources: dict[str, float] = {}  # what it holds while alive
    placement_group: bytes = b""
    core: str = ""  # its core socket, when ``address`` is its exec socket (a sync actor): where cancels go


# ---- to a core server (every driver and worker runs one) ---------------------


class PushTask(Msg, tag="push"):
    """Owner to leased worker: run this task; reply TaskDone."""

    task_id: bytes
    fn_id: bytes
    fn_blob: bytes | None
    name: str
    args: Inline
    resolved: list[Value]
    num_returns: Returns
    job_id: str
    owner: str
    owner_id: bytes
    attempt: int = 0
    streaming: bool = False
    gpu_ids: list[str] = []  # the GPUs its lease holds: its CUDA_VISIBLE_DEVICES
    placement_group: bytes = b""  # the group it runs in (get_current_placement_group)
    capture_child_tasks: bool = False  # tasks and actors it creates go into that group by default
    nested: list[tuple[bytes, str]] = []  # refs nested in args (id, owner): borrowed before it runs
    namespace: str = ""  # its job's namespace: get_actor() and named actors inside it use it
    resources: dict[str, float] = {}  # what its lease holds for it (get_assigned_resources)


class CancelTask(Msg, tag="cancel"):
    """Owner to worker (core socket): interrupt this task if running, else answer at once;
    ``recursive``: cancel the tasks it submitted too."""

    task_id: bytes
    num_returns: Returns = 1
    recursive: bool = False


class GetObject(Msg, tag="get"):
    """Borrower to owner: reply with the object's value once it exists."""

    req: int
    object_id: bytes
    lost: bytes = b""  # the borrower could not read it from this node's store: recompute it


class TaskDone(Msg, tag="done"):
    """Worker to owner: the task's return values (or its error, once per return)."""

    task_id: bytes
    returns: list[Value]
    elapsed: float = 0.0


class AddBorrowers(Msg, tag="borrow"):
    """Borrower to owner: keep these objects while I hold refs to them; answer BorrowersAdded.

    Sent before running a task whose arguments nest refs, while its submitter still holds them.
    """

    req: int
    object_ids: list[bytes]


class BorrowersAdded(Msg, tag="borrowed"):
    """Owner to borrower: AddBorrowers ``req`` is recorded."""

    req: int


class RemoveBorrowers(Msg, tag="unborrow"):
    """Borrower to owner (same channel as AddBorrowers): I hold no refs to these any more."""

    object_ids: list[bytes]


class PinObjects(Msg, tag="pin"):
    """Borrower to owner: I passed refs to these where nobody counts them; keep them for good."""

    object_ids: list[bytes]


class ObjectReply(Msg, tag="object"):
    """Owner to borrower: the value asked for by GetObject ``req``."""

    req: int
    value: Value


class CallActor(Msg, tag="call"):
    """Caller to actor: run this method; reply TaskDone (StreamItem/StreamEnd if streaming)."""

    call_id: bytes
    method: str
    args: Inline
    resolved: list[Value]
    num_returns: Returns
    job_id: str
    owner: str
    owner_id: bytes
    streaming: bool = False
    attempt: int = 0
    nested: list[tuple[bytes, str]] = []  # refs nested in args (id, owner): borrowed before it runs


class InitActor(Msg, tag="init"):
    """Node to a fresh worker process: become this actor (run __init__); reply ActorReady."""

    req: int
    spec: ActorSpec
    incarnation: int


class ActorReady(Msg, tag="ready_actor"):
    """Actor process to node: __init__ finished (error set if it raised); ``exec``: calls
    go to its exec socket (a sync actor), else to its core socket."""

    req: int
    error: ErrorValue | None = None
    exec: bool = False


class StreamItem(Msg, tag="item"):
    """Worker to owner: the ``index``-th value a streaming task or method yielded."""

    task_id: bytes
    index: int
    value: Value


class StreamEnd(Msg, tag="end"):
    """Worker to owner: a stream ended after ``count`` items (``error``: how it failed)."""

    task_id: bytes
    count: int
    error: ErrorValue | None = None


CoreMessage = (
    PushTask | CancelTask | GetObject | TaskDone | ObjectReply | CallActor | InitActor | ActorReady | StreamItem | StreamEnd
    | AddBorrowers | BorrowersAdded | RemoveBorrowers | PinObjects
)


# ---- to a node service --------------------------------------------------------


class RequestLease(Msg, tag="lease"):
    """Core to node: a worker for this resource shape and environment, please."""

    req: int
    shape: dict[str, float]
    env: dict[str, str]
    job_id: str
    name: str
    strategy: str = "DEFAULT"  # DEFAULT | SPREAD
    node_affinity: bytes = b""
    soft: bool = False
    spilled: bool = False  # another node sent it here: grant or queue, never spill again
    # The node holding most bytes of the task's stored arguments (b"": none): a node that is not
    # it sends the request there first (LeaseRefused kind "locality"), which then decides as usual.
    locality: bytes = b""
    retriable: bool = True  # its tasks may run again if the worker dies (the memory monitor kills those first)


class ReturnLease(Msg, tag="unlease"):
    """Core to node: done with this lease; ``kill`` the worker instead of reusing it."""

    lease_id: bytes
    kill: bool = False


class WorkerBlocked(Msg, tag="blocked"):
    """Worker to its node: my task waits on objects; lend my CPUs to others."""

    worker_id: bytes


class WorkerUnblocked(Msg, tag="unblocked"):
    """Worker to its node: my task runs again; take my CPUs back."""

    worker_id: bytes


class SubscribeLogs(Msg, tag="logsub"):
    """Driver to node: send me LogBatch messages for this job's workers."""

    job_id: str


class WorkerExitQuery(Msg, tag="exitq"):
    """Core to node: why did this worker die? (replied once it is reaped)."""

    req: int
    worker_id: bytes


class ActorSpecRequest(Msg, tag="actor_spec_q"):
    """Fresh actor process to its node, on its existing connection: which actor am I? (ActorSpecReply)"""

    req: int
    worker_id: bytes


class ActorSpecReply(Msg, tag="actor_spec"):
    """Node to a fresh actor process: become this actor (run __init__), then say ActorInitDone."""

    req: int
    spec: ActorSpec


class ActorInitDone(Msg, tag="actor_init_done"):
    """Actor process to its node, on the connection it asked on: __init__ finished (``error``
    set if it raised); ``exec``: calls go to its exec socket (a sync actor), else its core socket."""

    worker_id: bytes
    error: ErrorValue | None = None
    exec: bool = False


class NodeInfoRequest(Msg, tag="nodeinfo"):
    """Anyone to node: a NodeView of this node."""

    req: int


class LeaseGranted(Msg, tag="granted"):
    """Node to core: lease ``lease_id`` on worker ``worker_id``, reachable at ``address``."""

    req: int
    lease_id: bytes
    worker_id: bytes
    address: str
    pid: int
    core_address: str = ""
    node_id: bytes = b""
    gpu_ids: list[str] = []


class LeaseRefused(Msg, tag="refused_lease"):
    """Node to core: this lease can never (``infeasible``) or cannot now be granted."""

    req: int
    kind: str
    message: str


class LogLine(msgspec.Struct, frozen=True, array_like=True):
    pid: int
    name: str
    stream: str
    text: str


class LogBatch(Msg, tag="logs"):
    """Node to subscribed driver: worker output lines."""

    lines: list[LogLine]


class WorkerExitReply(Msg, tag="exit"):
    """Node to core: how the worker asked about ended."""

    req: int
    reason: str


class NodeInfoReply(Msg, tag="nodeinfo_reply"):
    req: int
    node: NodeView


class TaskRecord(msgspec.Struct, frozen=True, array_like=True):
    """One task or actor call a worker ran (or runs: ``end`` 0.0); times are wall clock."""

    task_id: bytes
    name: str
    job_id: str
    actor_id: bytes
    attempt: int
    start: float
    end: float
    error: str  # "" if it succeeded; else the error's type and message
    traceback: str = ""  # a failed call's remote traceback (its end, if long)


class TaskEvents(Msg, tag="task_events"):
    """Worker to its node, about once a second while it works: tasks it finished since the last
    batch, and the one it runs now (the node keeps a bounded history for ``actorlib list tasks``)."""

    worker_id: bytes
    pid: int
    done: list[TaskRecord]
    running: list[TaskRecord] = []


class PendingTask(msgspec.Struct, frozen=True, array_like=True):
    """A task or actor call its owner has not seen start yet, and why (Ray's task states)."""

    task_id: bytes
    name: str
    job_id: str
    actor_id: bytes
    state: str  # PENDING_ARGS_AVAIL | PENDING_NODE_ASSIGNMENT | SUBMITTED_TO_WORKER | PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY
    created: float  # wall clock, when it was submitted
    attempt: int = 0


class PendingTasksQuery(Msg, tag="pending_query"):
    """Node to a driver or worker connected to it (a state query for tasks): the tasks you own
    that have not started; answered by PendingTasksReply."""

    req: int
    limit: int


class PendingTasksReply(Msg, tag="pending_reply"):
    """Driver or worker to its node: up to ``limit`` of its pending tasks, oldest first, and
    how many it has in all (``total``)."""

    req: int
    tasks: list[PendingTask]
    total: int = 0


class ReadLog(Msg, tag="read_log"):
    """Anyone to node: stream log file ``name`` from ``offset`` (or its last ``tail`` lines);
    with ``follow``, keep sending what is appended until the connection closes."""

    req: int
    name: str
    offset: int = 0
    tail: int = -1  # -1: from ``offset``
    follow: bool = False


class LogData(Msg, tag="log_data"):
    """Node to reader: the next bytes of a log file (``end``: nothing more will come)."""

    req: int
    data: bytes
    offset: int  # of the byte after ``data``
    end: bool = False
    error: str = ""


class ObjectRefInfo(msgspec.Struct, frozen=True, array_like=True):
    """One object a process holds references to, as it tells its node (``actorlib memory``)."""

    object_id: bytes
    owned: bool
    owner: str  # the owner's address (this process's own when ``owned``)
    local_refs: int  # ObjectRef objects in this process (those its unfinished tasks hold included)
    task_refs: int  # held as arguments by tasks and actor calls it submitted that have not finished
    borrowers: list[str]  # owned: the processes borrowing it (their peer names)
    escaped: bool  # owned: pinned for the owner's lifetime; borrowed: the owner was asked to pin it
    where: str  # PENDING | INLINE | STORE | ERROR
    size: int  # -1 while pending
    stored_id: bytes = b""  # its id in the store holding it
    stored_node: bytes = b""
    lineage: bool = False  # owned: the task that made it is kept, to recompute it if its node dies
    lineage_refs: int = 0  # held by such kept tasks (it was an argument of one)


class ObjectsQuery(Msg, tag="objects_query"):
    """Node to a driver or worker connected to it: list the objects you hold references to."""

    req: int
    limit: int


class ObjectsReply(Msg, tag="objects_reply"):
    """Driver or worker to its node, answering ObjectsQuery: up to ``limit`` of its ``total`` objects."""

    req: int
    pid: int
    peer: str  # its peer name (driver:<id> | worker:<id>)
    actor_id: bytes
    objects: list[ObjectRefInfo]
    total: int = 0


NodeMessage = (
    RequestLease
    | ReturnLease
    | WorkerBlocked
    | WorkerUnblocked
    | SubscribeLogs
    | WorkerExitQuery
    | NodeInfoRequest
    | LeaseGranted
    | LeaseRefused
    | LogBatch
    | WorkerExitReply
    | NodeInfoReply
    | TaskEvents
    | ReadLog
    | LogData
    | PendingTasksQuery
    | PendingTasksReply
    | ObjectsQuery
    | ObjectsReply
    | ActorSpecRequest
    | ActorSpecReply
    | ActorInitDone
)


# ---- to the head service ----------------------------------------------------------


class ClaimOwnership(Msg, tag="claim"):
    """Driver or worker to a head it reconnected to (after a head restart): I own these
    non-detached actors and placement groups, so they still end when I do."""

    actor_ids: list[bytes]
    pg_ids: list[bytes]


class RegisterDriver(Msg, tag="driver"):
    """Driver to head: a new job starts; which node serves me?"""

    req: int
    pid: int
    namespace: str
    entrypoint: str
    submission_id: str = ""  # set when the driver is a submitted job's entrypoint: its work is that job's
    node_id: bytes = b""  # the node it runs on, if it knows (a job's entrypoint does): serve me from there


class DriverRegistered(Msg, tag="driver_ok"):
    req: int
    job_id: str
    node: NodeView


class ClusterInfoRequest(Msg, tag="cluster"):
    req: int


class ClusterInfoReply(Msg, tag="cluster_reply"):
    req: int
    nodes: list[NodeView]
    groups: list[PlacementGroupView] = []
    autoscaler: AutoscalerView | None = None  # None: the cluster does not scale


class RequestResources(Msg, tag="request_resources"):
    """Driver to head: keep room for these bundles (replaces the previous request); reply Done."""

    req: int
    bundles: list[dict[str, float]]


class DrainNode(Msg, tag="drain"):
    """Head (autoscaler) to node: take no new work (``drain``), or take it again; heartbeats say when it is idle."""

    drain: bool
    reason: str = ""


class CreateActor(Msg, tag="create_actor"):
    """Owner to head: create this actor (or, with ``get_if_exists``, find the named one)."""

    req: int
    spec: ActorSpec
    get_if_exists: bool = False


class ActorCreated(Msg, tag="actor_created"):
    """Head to owner: the actor is registered (``view``: the existing one, for get_if_exists)."""

    req: int
    view: ActorView | None = None
    error: str = ""


class WaitActor(Msg, tag="wait_actor"):
    """Caller to head: reply when the actor is ALIVE with incarnation > ``after``, or DEAD;
    with ``ended``, as soon as incarnation ``after`` is over (its view's cause says why)."""

    req: int
    actor_id: bytes
    after: int = -1
    ended: bool = False


class ActorReply(Msg, tag="actor"):
    req: int
    view: ActorView | None


class GetNamedActor(Msg, tag="named"):
    """Anyone to head: the live actor with this name in this namespace (view None if none)."""

    req: int
    name: str
    namespace: str


class KillActor(Msg, tag="kill"):
    """Anyone to head: kill the actor; restart it per its policy unless ``no_restart``."""

    req: int
    actor_id: bytes
    no_restart: bool = True
    reason: str = ""


class ListActors(Msg, tag="list_actors"):
    """Anyone to head: every actor it knows (answered ActorList). For inspection (issue 11)."""

    req: int


class ActorList(Msg, tag="actor_list"):
    """Head to asker: the live actors, then the dead ones it still remembers (oldest first)."""

    req: int
    actors: list[ActorView]


class Done(Msg, tag="done_head"):
    req: int
    error: str = ""


class JobSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A job's entrypoint as the head asks a node to run it (packages as ``gcs://`` URIs)."""

    submission_id: str
    entrypoint: str
    runtime_env: dict[str, Any] = {}
    resources: dict[str, float] = {}  # held on the node while the entrypoint runs
    stop_timeout: float = 3.0  # seconds between SIGTERM and SIGKILL of its process group


class EntrypointState(Msg, tag="entrypoint_state"):
    """Node to head: what became of a job's entrypoint here. ``state``: RUNNING (``pid``); EXITED
    (``code``, negative for a signal; ``stopped`` if asked to); SETUP_FAILED or START_FAILED (it
    never ran: ``error``); LOST (its node's service stopped, and the entrypoint with it); REFUSED
    (its resources are not free here now: the head places it again)."""

    submission_id: str
    state: str
    pid: int = 0
    code: int = 0
    stopped: bool = False
    error: str = ""
    log_tail: str = ""  # the end of its log, for a failure message


class RegisterNode(Msg, tag="node"):
    """Node to head, first on its channel: here I am, with the actors I host (after a head restart)."""

    req: int
    node: NodeView
    actors: list[ActorView] = []
    groups: list[bytes] = []  # placement groups with bundles here (after a head restart)
    entrypoints: list[EntrypointState] = []  # job entrypoints it runs, or whose end it could not report yet


class NodeRegistered(Msg, tag="node_ok"):
    """Head to node: registered; heartbeat every ``period`` seconds (or refused: ``error``)."""

    req: int
    period: float
    error: str = ""
    fenced: bool = False  # refused for good: this head declared the node dead; it must stop itself


class Heartbeat(Msg, tag="beat"):
    """Node to head, periodically: alive, and these resources are free."""

    node_id: bytes
    available: dict[str, float]
    pending: int = 0
    total: dict[str, float] | None = None  # when it changed (placement groups come and go)
    demands: list[Demand] = []
    busy: int = 0  # leases, actors and stored objects it holds
    draining: bool = False  # it has taken DrainNode(drain=True) and grants nothing new


class ClusterView(Msg, tag="view"):
    """Head to node, answering a heartbeat: every live node's free resources (for spillback)."""

    nodes: list[NodeView]
    node_types: list[dict[str, float]] = []  # what the autoscaler could still add: requests one fits wait
    settling: bool = False  # a restarted head's old nodes may still register: infeasible requests wait


class StartActor(Msg, tag="start_actor"):
    """Head to node: host this actor."""

    spec: ActorSpec


class StopActor(Msg, tag="stop_actor"):
    """Head to node: kill this actor (restart it per policy unless ``no_restart``)."""

    actor_id: bytes
    no_restart: bool
    reason: str


class ActorState(Msg, tag="actor_state"):
    """Node to head: an actor it hosts changed state."""

    actor_id: bytes
    state: str
    address: str = ""
    pid: int = 0
    cause: str = ""
    core: str = ""  # its core socket when ``address`` is its exec socket (see ActorView.core)


class NodeDied(Msg, tag="node_died"):
    """Head to drivers, workers and actors: a node missed its heartbeats (or its connection
    closed) and is dead; its own workers and actors stop at once (they are fenced)."""

    node_id: bytes
    reason: str
    address: str = ""  # its node service's address: links to it are dropped, even if still open


class NodeMember(Msg, tag="node_member"):
    """Worker or actor process to head, first on each connection: I run on this node and stop
    when it is declared dead; tell me first, and wait (a little) for me to go before the others."""

    node_id: bytes


# ---- placement groups ------------------------------------------------------------


class CreatePlacementGroup(Msg, tag="create_pg"):
    req: int
    spec: PlacementGroupSpec


class RemovePlacementGroup(Msg, tag="remove_pg"):
    req: int
    pg_id: bytes


class WaitPlacementGroup(Msg, tag="wait_pg"):
    """Reply when the group is CREATED or REMOVED (at once, without ``wait``)."""

    req: int
    pg_id: bytes = b""
    name: str = ""
    namespace: str = ""
    wait: bool = True


class ListPlacementGroups(Msg, tag="list_pgs"):
    req: int


class PlacementGroupReply(Msg, tag="pg"):
    req: int
    view: PlacementGroupView | None = None
    error: str = ""


class PlacementGroupList(Msg, tag="pg_list"):
    req: int
    groups: list[PlacementGroupView]


class PrepareBundles(Msg, tag="prepare_bundles"):
    """Head to node: set aside these bundles' resources if they fit now (phase one)."""

    req: int
    pg_id: bytes
    bundles: dict[int, dict[str, float]]


class CommitBundles(Msg, tag="commit_bundles"):
    """Head to node: offer the prepared bundles as the group's resources (phase two)."""

    req: int
    pg_id: bytes


class ReleaseBundles(Msg, tag="release_bundles"):
    """Head to node: give up the group's bundles here, killing what runs in them."""

    req: int
    pg_id: bytes
    indexes: list[int] = []  # only these (a rolled-back prepare); empty: every bundle
    reason: str = ""


class BundlesReply(Msg, tag="bundles_reply"):
    req: int
    ok: bool
    error: str = ""


class GetPackage(Msg, tag="get_package"):
    """Node or driver to head: a runtime_env package's bytes (``data=False``: only whether it exists)."""

    req: int
    name: str
    data: bool = True


class PutPackage(Msg, tag="put_package"):
    """Driver to head: keep this runtime_env package (a zipped working_dir or py_module); answered by Done."""

    req: int
    name: str
    data: bytes


class PackageReply(Msg, tag="package"):
    """Head to node or driver: whether the package exists, and its bytes if asked for."""

    req: int
    found: bool
    data: bytes = b""
    error: str = ""


class StateQuery(Msg, tag="state_query"):
    """Anyone to head: a state API query (``kind``: tree, a listing, a summary, the timeline);
    answered by StateReply whose payload is the ``actorlib._state`` result, msgpack-encoded."""

    req: int
    kind: str
    filters: list[tuple[str, str, str]] = []
    limit: int = 100
    detail: bool = False
    args: dict[str, str] = {}  # kind-specific: node, depth, id, summary


class StateReply(Msg, tag="state_reply"):
    """Head to querier: the encoded result, or the error that says what was wrong."""

    req: int
    payload: bytes = b""
    error: str = ""


class NodeQuery(Msg, tag="node_query"):
    """Head to node (on the node's registration channel): this node's part of a state query
    (``kind``: tree, tasks, workers, objects, logs); answered by NodeQueryReply."""

    req: int
    kind: str


class NodeQueryReply(Msg, tag="node_query_reply"):
    """Node to head: the encoded answer to a NodeQuery, or why there is none."""

    req: int
    payload: bytes = b""
    error: str = ""


class StartJob(Msg, tag="start_job"):
    """Head to node: run this job's entrypoint here, holding its resources until it ends; the
    node answers with EntrypointState messages (REFUSED at once if the resources are not free)."""

    spec: JobSpec


class StopJob(Msg, tag="stop_job"):
    """Head to node: stop a job's entrypoint (SIGTERM to its process group, SIGKILL after its stop timeout)."""

    submission_id: str
    reason: str = ""


class ForgetJob(Msg, tag="forget_job"):
    """Head to node: the job was deleted; remove its log file here."""

    submission_id: str


HeadMessage = (
    RegisterNode
    | NodeRegistered
    | Heartbeat
    | ClusterView
    | StartActor
    | StopActor
    | ActorState
    | NodeDied
    | ClaimOwnership
    | RegisterDriver
    | DriverRegistered
    | ClusterInfoRequest
    | ClusterInfoReply
    | CreateActor
    | ActorCreated
    | WaitActor
    | ActorReply
    | GetNamedActor
    | KillActor
    | ListActors
    | ActorList
    | Done
    | CreatePlacementGroup
    | RemovePlacementGroup
    | WaitPlacementGroup
    | ListPlacementGroups
    | PlacementGroupReply
    | PlacementGroupList
    | PrepareBundles
    | CommitBundles
    | ReleaseBundles
    | BundlesReply
    | GetPackage
    | PutPackage
    | PackageReply
    | StateQuery
    | StateReply
    | NodeQuery
    | NodeQueryReply
    | RequestResources
    | DrainNode
    | StartJob
    | StopJob
    | ForgetJob
    | EntrypointState
    | NodeMember
)


# ---- to a node's object store (blocking clients; replies may carry an fd) ---------


class StoreAttach(Msg, tag="attach"):
    """Client to store, first on a connection: send me the arena's memfd (reply StoreFd)."""

    req: int


class StoreCreate(Msg, tag="create"):
    """Client to store: reserve ``size`` bytes of the arena for a new object; reply StorePlace."""

    req: int
    object_id: bytes
    size: int
    owner: bytes


class StoreSeal(Msg, tag="seal"):
    """Client to store: the object is fully written; readers may have it."""

    req: int
    object_id: bytes


class StoreGet(Msg, tag="sget"):
    """Client to store: where the object is (waits until sealed); reply StorePlace, which pins it."""

    req: int
    object_id: bytes


class StoreFree(Msg, tag="free"):
    """Owner to store: these objects are no longer referenced."""

    object_ids: list[bytes]


class StoreRead(Msg, tag="read"):
    """A process on another node to store: send me the object's bytes (waits until sealed)."""

    req: int
    object_id: bytes


class StoreData(Msg, tag="data"):
    """Store to remote reader: ``size`` raw bytes of the object follow this frame."""

    req: int
    size: int


class StoreStatsRequest(Msg, tag="stats"):
    req: int


class StoreFd(Msg, tag="fd"):
    """Store to client: the arena (``size`` bytes) is the memfd sent with this message; its
    first ``prefault`` bytes are faulted in ahead of use."""

    req: int
    size: int
    prefault: int = 0


class StorePlace(Msg, tag="place"):
    """Store to client: the object lies at ``offset`` in the arena.

    In answer to StoreCreate the client writes it there (``fresh``: those
    pages were never touched, so a write system call beats faulting them in);
    to StoreGet or StoreLand the extent is pinned for this connection until
    StoreRelease names it, or the connection closes.
    """

    req: int
    offset: int
    size: int
    fresh: bool = False


class StoreRelease(Msg, tag="release"):
    """Client to store: the views of these extents, pinned by StoreGet/StoreLand on this connection, are gone."""

    offsets: list[int]


class StoreLand(Msg, tag="land"):
    """Client to its own node's store: reserve ``size`` bytes to receive another node's object into
    (pinned as by a get; reply StorePlace)."""

    req: int
    size: int


class StoreOk(Msg, tag="ok"):
    req: int


class StoreError(Msg, tag="serror"):
    """Store to client: ``kind`` is full, lost, exists or bad."""

    req: int
    kind: str
    message: str


class StoreStats(Msg, tag="stats_reply"):
    req: int
    used: int
    capacity: int
    objects: int


StoreMessage = (
    StoreAttach
    | StoreCreate
    | StoreSeal
    | StoreGet
    | StoreRead
    | StoreFree
    | StoreStatsRequest
    | StoreFd
    | StorePlace
    | StoreRelease
    | StoreLand
    | StoreData
    | StoreOk
    | StoreError
    | StoreStats
)



# ---- application metrics (actorlib.util.metrics) ---------------------------------------


class MetricPoint(msgspec.Struct, frozen=True, array_like=True):
    """One tag combination of a metric in one process, cumulative since the process defined it."""

    tags: list[str]  # values, in the metric's tag_keys order
    value: float  # counter: the total; gauge: the value; histogram: the sum of observations
    counts: list[int] = []  # histogram: observations per bucket (not cumulative), then +Inf
    time: float = 0.0  # gauge: when it was set (wall clock): the node keeps the latest of its processes'


class MetricReport(msgspec.Struct, frozen=True, array_like=True):
    """One metric a process defined, and its series."""

    name: str
    kind: str  # counter | gauge | histogram
    description: str
    tag_keys: list[str]
    boundaries: list[float]
    points: list[MetricPoint]


class AppMetrics(Msg, tag="app_metrics"):
    """Driver or worker to its node, when its metrics changed (at most every couple of seconds)
    and once as it exits: every metric it defined, cumulative (a lost or repeated one does no harm)."""

    pid: int
    metrics: list[MetricReport]


NodeMessage = NodeMessage | AppMetrics  # type: ignore[misc]  # (new messages go at the end of the module)


_decoders: dict[Any, msgspec.msgpack.Decoder[Any]] = {}


def decoder_for(decode_type: Any) -> msgspec.msgpack.Decoder[Any]:
    """One shared decoder per message type, built at first use: building one for a union of
    a hundred messages takes 35-160 µs, and a node with a thousand actors opens thousands of
    channels. (A decoder keeps no state between calls: decoding keeps it on the C stack.)"""
    decoder = _decoders.get(decode_type)
    if decoder is None:
        decoder = _decoders[decode_type] = msgspec.msgpack.Decoder(decode_type)
    return decoder


def prepare_decoders() -> None:
    """Build a decoder for every union once, so that msgspec works out each message's type
    information in this process. Called in a zygote: the workers it forks inherit the
    decoders instead of each spending ~5 ms recomputing it (evaluating every Struct's
    annotations) and building their own."""
    for union in (Handshake, CoreMessage, NodeMessage, HeadMessage, StoreMessage):
        decoder_for(union)

"""Fuzzing every socket of a live cluster: bad input closes that one connection and nothing else.

The servers: the head, the node, the object store (all three in the head process of an embedded
cluster), the driver's core server (this process), and an actor's core and exec sockets (its own
process; a task worker serves the same two). For each, hypothesis sends

- before the handshake (a stranger): random bytes, framed junk, Auths of the wrong shape,
  well-formed Auths with a wrong proof, frames larger than an Auth may be;
- after a valid handshake (a peer holding the token): random frames, messages of the
  connection's union with mistyped or missing fields, unknown tags, non-array messages,
  truncated messages, frames over the limit, and big frames abandoned half-way.

After every example a bystander connection (opened before the bad one) gets an answer to a real
request, and after each batch a real task and actor call run; the serving process's RSS is
compared before and after. The counts tried are printed at the end of the run
(``tests/fuzzcount.py``) and recorded in docs/reliability.md. With ``FUZZ_TRACE=<file>`` every
well-formed request is appended to that file before it is sent, with each batch's RSS growth.
"""

from __future__ import annotations

import contextlib
import os
import typing
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import psutil
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actorlib
from actorlib import _core, _wire
from actorlib._core._arguments import pack
from actorlib._wire import (
    AddBorrowers,
    BorrowersAdded,
    CallActor,
    CancelTask,
    ClusterInfoRequest,
    CoreMessage,
    ErrorValue,
    GetNamedActor,
    GetObject,
    GetPackage,
    HeadMessage,
    Inline,
    KillActor,
    ListActors,
    ListPlacementGroups,
    NodeInfoRequest,
    NodeMessage,
    ObjectReply,
    PinObjects,
    PushTask,
    ReadLog,
    RemoveBorrowers,
    RemovePlacementGroup,
    ReturnLease,
    StateQuery,
    StoreCreate,
    StoreFree,
    StoreGet,
    StoreMessage,
    StoreRead,
    StoreSeal,
    StoreStatsRequest,
    Stored,
    StreamEnd,
    StreamItem,
    SubscribeLogs,
    TaskDone,
    WaitActor,
    WaitPlacementGroup,
    WorkerBlocked,
    WorkerExitQuery,
    WorkerUnblocked,
)
from actorlib._wire._framing import DEFAULT_MAX_FRAME, HANDSHAKE_MAX_FRAME
from actorlib._wire._messages import PROTOCOL_VERSION, Auth, Handshake, Welcome

from ...fuzzcount import count

pytestmark = pytest.mark.slow
FUZZ = settings(
    derandomize=True,  # a fixed seed (hypothesis still adapts as it goes: inputs vary a little); a failure prints its example
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
WAIT = 30.0  # seconds a server has to answer or hang up (generous: CI runs on 2 busy cores)
RSS_GROWTH_LIMIT = 64 * 2**20


@actorlib.remote
class Target:
    """An actor whose process serves a core and an exec socket."""

    def ping(self) -> str:
        return "pong"

    def where(self) -> tuple[str, int]:
        return _core.current().identity.address, os.getpid()


@actorlib.remote
def ping() -> str:
    return "pong"


class Server:
    """One listening socket: its address, its message union, a request it answers, its process."""

    def __init__(self, name: str, address: str, union: Any, probe: Callable[[int], Any], pid: int) -> None:
        self.name = name
        self.address = address
        self.union = union
        self.probe = probe  # a request with this number, whose reply carries it back (req or task_id)
        self.pid = pid


def answer_key(message: Any) -> Any:
    return getattr(message, "req", None) if not hasattr(message, "task_id") else message.task_id


_servers: dict[str, Server] = {}
_target: list[Any] = []


def servers() -> dict[str, Server]:
    """Every server of the shared cluster (an actor is started on first use)."""
    if _servers and actorlib.is_initialized() and all(psutil.pid_exists(s.pid) for s in _servers.values()):
        return _servers
    ident = _core.current().identity
    (head_pid,) = [p.pid for p in psutil.Process().children() if "actorlib::head" in " ".join(p.cmdline())]
    actor = Target.remote()
    core, actor_pid = actorlib.get(actor.where.remote(), timeout=60)
    core_unix = _wire.local_part(core)
    assert core_unix is not None
    _target[:] = [actor]
    _servers.clear()

    def call_ping(req: int) -> CallActor:  # what a caller sends a sync actor's exec socket
        return CallActor(
            call_id=req.to_bytes(8, "big"), method="ping", args=pack(_core.current(), "ping", (), {})[0], resolved=[],
            num_returns=1, job_id=ident.job_id, owner=ident.address, owner_id=ident.core_id,
        )  # fmt: skip

    no_object = b"\0" * 16
    for server in (
        Server("head", _wire.unix_address(ident.session_dir / "sockets" / "head.sock"), HeadMessage, lambda r: ClusterInfoRequest(req=r), head_pid),
        Server("node", ident.node_address, NodeMessage, lambda r: NodeInfoRequest(req=r), head_pid),
        Server("store", ident.store_address, StoreMessage, lambda r: StoreStatsRequest(req=r), head_pid),
        Server("driver", ident.address, CoreMessage, lambda r: GetObject(req=r, object_id=no_object), os.getpid()),
        Server("worker-core", core_unix, CoreMessage, lambda r: GetObject(req=r, object_id=no_object), actor_pid),
        Server("worker-exec", core_unix.replace(".sock", "-x.sock"), CoreMessage, call_ping, actor_pid),
    ):  # fmt: skip
        _servers[server.name] = server
    return _servers


SERVERS = ["head", "node", "store", "driver", "worker-core", "worker-exec"]


# ---- raw connections --------------------------------------------------------------------


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


class Raw:
    """A connection spoken by hand: frames read as they come, nothing decoded unless asked."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.reader = _wire.FrameReader()
        self.frames: list[bytes] = []

    @classmethod
    async def open(cls, address: str) -> Raw:
        return cls(await _wire.open_stream(address))

    async def next_frame(self) -> bytes | None:
        """The next frame, or None once the server has closed the connection."""
        with trio.fail_after(WAIT):
            while not self.frames:
                try:
                    data = await self.stream.receive_some(65536)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return None
                if not data:
                    return None
                self.frames.extend(self.reader.feed(data))
        return self.frames.pop(0)

    async def send(self, data: bytes) -> bool:
        """Send ``data``; False if the server had already closed the connection."""
        try:
            await self.stream.send_all(data)
            return True
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return False

    async def closed_by_server(self) -> list[bytes]:
        """Wait for the server to hang up; return the frames it sent before."""
        seen = []
        while (frame_ := await self.next_frame()) is not None:
            seen.append(frame_)
        return seen

    async def __aenter__(self) -> Raw:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await trio.aclose_forcefully(self.stream)


async def authenticated(address: str, union: Any) -> _wire.Channel:
    """A Channel past the handshake, its sender not started (tests write to ``.stream`` by hand too)."""
    stream = await _wire.open_stream(address)
    channel = _wire.Channel(stream, union, peer=address)
    try:
        with trio.fail_after(WAIT):
            await channel.handshake_client(_core.current().identity.token, "fuzzer:00")
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return channel


@contextlib.asynccontextmanager
async def connection(server: Server) -> AsyncIterator[_wire.Channel]:
    """An authenticated connection to ``server``, closed however the block ends (a failed
    assertion must not leave it to the garbage collector: its ResourceWarning hid the failure)."""
    channel = await authenticated(server.address, server.union)
    try:
        yield channel
    finally:
        await trio.aclose_forcefully(channel.stream)


async def answered(channel: _wire.Channel, probe: Any) -> bool:
    """Whether ``channel`` answers ``probe`` (replies to earlier requests are skipped), False if it closes."""
    key = answer_key(probe) if not hasattr(probe, "call_id") else probe.call_id
    try:
        await channel._send_direct(probe)
        with trio.fail_after(WAIT):
            while True:
                if answer_key(await channel.receive()) == key:
                    return True
    except (EOFError, trio.BrokenResourceError, trio.ClosedResourceError, _wire.ProtocolError):
        return False


async def still_serving(server: Server, bystander: _wire.Channel, req: int) -> None:
    """The server answers a real request on a connection opened before the bad one."""
    assert await answered(bystander, server.probe(req)), f"{server.name} stopped answering its other connections"


def rss(pid: int) -> int:
    return psutil.Process(pid).memory_info().rss


def assert_bounded(server: Server, before: int) -> None:
    """The serving process's RSS grew by less than RSS_GROWTH_LIMIT over the batch."""
    grown = rss(server.pid) - before
    if os.environ.get("FUZZ_TRACE"):
        with open(os.environ["FUZZ_TRACE"], "a") as trace:
            print(f"RSS of {server.name} (pid {server.pid}) grew by {grown / 2**20:.1f} MiB", file=trace)
    assert grown < RSS_GROWTH_LIMIT, f"{server.name}'s RSS grew by {grown / 2**20:.0f} MiB"


# ---- one example of each suite (the TCP suite runs the same ones) ----------------------------


async def stranger_case(server: Server, data: bytes) -> None:
    """A stranger sends ``data`` after the server's Hello: never welcomed, hung up on; a bystander is still served."""
    async with connection(server) as bystander:
        async with await Raw.open(server.address) as raw:
            hello = msgspec.msgpack.decode(await raw.next_frame(), type=Handshake)
            assert type(hello).__name__ == "Hello"
            await raw.send(data)
            replies = [msgspec.msgpack.decode(f, type=Handshake) for f in await raw.closed_by_server()]
            assert not any(isinstance(r, Welcome) for r in replies), f"{server.name} welcomed a stranger"
        await still_serving(server, bystander, 1)


async def peer_case(server: Server, send: Callable[[_wire.Channel], Any]) -> None:
    """An authenticated peer sends something odd (``send``): the connection is closed or answers
    (a message that happened to be valid), never stuck; a bystander is still served."""
    async with connection(server) as bystander:
        async with connection(server) as odd:
            await send(odd)
            await answered(odd, server.probe(2))
        await still_serving(server, bystander, 3)


async def bad_frame_case(server: Server, data: bytes) -> None:
    await peer_case(server, lambda odd: odd.stream.send_all(data))


async def request_case(server: Server, message: Any) -> None:
    await peer_case(server, lambda odd: odd._send_direct(message))


async def abandoned_big_frames(server: Server, times: int, counter: str) -> None:
    """``times`` peers each start a 64 MiB frame, send 8 MiB of it and hang up; then a new peer is served."""
    for _ in range(times):
        count(counter, "big frame abandoned")
        async with connection(server) as bad:
            await bad.stream.send_all((64 * 2**20).to_bytes(4, "big") + b"\x92" + b"\0" * (8 * 2**20))
    async with connection(server) as bystander:
        assert await answered(bystander, server.probe(4))


def check_cluster_serves() -> None:
    assert actorlib.get(ping.remote(), timeout=60) == "pong"
    assert actorlib.get(_target[0].ping.remote(), timeout=60) == "pong"  # its exec socket: a real call


# ---- what hypothesis sends ----------------------------------------------------------------

VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=16) | st.binary(max_size=48),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=8,
)


def members(union: Any) -> list[type[msgspec.Struct]]:
    return list(typing.get_args(union))


def tag(cls: type[msgspec.Struct]) -> str:
    return cls.__struct_config__.tag  # type: ignore[return-value]


def mistyped(union: Any) -> st.SearchStrategy[bytes]:
    """A message of ``union``'s tags whose fields are random values, too few, or too many."""
    return st.sampled_from(members(union)).flatmap(
        lambda cls: st.lists(VALUES, max_size=len(cls.__struct_fields__) + 2).map(lambda values: msgspec.msgpack.encode([tag(cls), *values]))
    )


def unknown_tag(union: Any) -> st.SearchStrategy[bytes]:
    known = {tag(cls) for cls in members(union)}
    return st.tuples(st.text(max_size=12).filter(lambda t: t not in known), st.lists(VALUES, max_size=4)).map(
        lambda tv: msgspec.msgpack.encode([tv[0], *tv[1]])
    )


def truncated(union: Any) -> st.SearchStrategy[bytes]:
    """A well-formed message of the union, cut short (as a complete frame: the msgpack is truncated)."""

    def cut(data: bytes, where: float) -> bytes:
        return data[: max(1, int(len(data) * where))] if len(data) > 1 else data

    return st.tuples(mistyped(union), st.floats(0, 0.99)).map(lambda dw: cut(*dw))


def after_handshake(union: Any) -> st.SearchStrategy[tuple[str, bytes]]:
    return st.one_of(
        st.binary(max_size=256).map(lambda b: ("random bytes", frame(b))),
        mistyped(union).map(lambda b: ("mistyped message", frame(b))),
        unknown_tag(union).map(lambda b: ("unknown tag", frame(b))),
        VALUES.filter(lambda v: not isinstance(v, list)).map(lambda v: ("not an array", frame(msgspec.msgpack.encode(v)))),
        truncated(union).map(lambda b: ("truncated message", frame(b))),
        st.integers(DEFAULT_MAX_FRAME + 1, 2**32 - 1).map(lambda n: ("over the frame limit", n.to_bytes(4, "big") + b"x" * 64)),
    )


def before_handshake() -> st.SearchStrategy[tuple[str, bytes]]:
    auths = st.tuples(VALUES, VALUES, VALUES, VALUES).map(lambda f: msgspec.msgpack.encode(["auth", *f]))
    forged = st.tuples(st.binary(min_size=32, max_size=32), st.binary(max_size=32), st.text(max_size=20)).map(
        lambda f: msgspec.msgpack.encode(Auth(version=PROTOCOL_VERSION, proof=f[0], nonce=f[1], peer=f[2]))
    )
    return st.one_of(
        st.binary(max_size=256).map(lambda b: ("random frame", frame(b))),
        auths.map(lambda b: ("mistyped auth", frame(b))),
        forged.map(lambda b: ("wrong proof", frame(b))),
        mistyped(Handshake).map(lambda b: ("mistyped handshake", frame(b))),
        st.integers(HANDSHAKE_MAX_FRAME + 1, 2**32 - 1).map(lambda n: ("oversized before auth", n.to_bytes(4, "big") + b"x" * 64)),
    )


# ---- the suites ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SERVERS)
def test_strangers_get_nothing_and_cannot_disturb_anyone(cluster, name):
    server = servers()[name]
    before = rss(server.pid)

    @settings(FUZZ, max_examples=200)
    @given(case=before_handshake())
    def fuzz(case: tuple[str, bytes]) -> None:
        kind, data = case
        count(f"wire before handshake: {name}", kind)
        trio.run(stranger_case, server, data)

    fuzz()
    check_cluster_serves()
    assert_bounded(server, before)


@pytest.mark.parametrize("name", SERVERS)
def test_bad_frames_after_the_handshake_close_only_that_connection(cluster, name):
    server = servers()[name]
    before = rss(server.pid)

    @settings(FUZZ, max_examples=300)
    @given(case=after_handshake(server.union))
    def fuzz(case: tuple[str, bytes]) -> None:
        kind, data = case
        count(f"wire after handshake: {name}", kind)
        trio.run(bad_frame_case, server, data)

    fuzz()
    check_cluster_serves()
    assert_bounded(server, before)


@pytest.mark.parametrize("name", SERVERS)
def test_big_frames_abandoned_half_way_leave_no_memory_behind(cluster, name):
    """An authenticated peer may send frames up to 256 MiB; one that stops half-way and hangs up
    leaves nothing buffered (the server's RSS stays flat over 20 such 8 MiB halves)."""
    server = servers()[name]
    before = rss(server.pid)

    trio.run(abandoned_big_frames, server, 20, f"wire after handshake: {name}")
    check_cluster_serves()
    assert_bounded(server, before)


@pytest.mark.parametrize("name", SERVERS)
def test_the_wrong_token_is_refused_with_a_reason(cluster, name):
    server = servers()[name]

    async def run() -> None:
        stream = await _wire.open_stream(server.address)
        channel = _wire.Channel(stream, server.union, peer=server.address)
        with pytest.raises(_wire.AuthenticationError, match="invalid cluster token|refused"):
            await channel.handshake_client("not-the-token", "intruder:00")
        await stream.aclose()

    trio.run(run)


# ---- well-formed requests with random values ------------------------------------------------

NOWHERE = st.sampled_from(["unix:/nonexistent/fuzz.sock", "127.0.0.1:1", ""])  # addresses: never off this machine
IDS = st.one_of(st.binary(max_size=20), st.just(b"\0" * 16))
INTS = st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-2, 3))
INLINE = st.builds(Inline, data=st.binary(max_size=64), buffers=st.lists(st.binary(max_size=16), max_size=2))
VALUE = st.one_of(
    INLINE,
    st.builds(Stored, object_id=IDS, node_id=IDS, size=INTS, store=NOWHERE),
    st.builds(ErrorValue, data=st.binary(max_size=64)),
)
NESTED = st.lists(st.tuples(IDS, NOWHERE), max_size=2)
STATE_KINDS = ["tree", "timeline", "stats", "summary", "nodes", "actors", "placement_groups", "jobs", "tasks", "workers", "objects", "logs"]


def requests(name: str, log_names: list[str]) -> st.SearchStrategy[Any]:
    """Requests a client may send ``name``, with random values (addresses kept on this machine).

    Left out: those that change the cluster for good or for others (registering a node or
    driver, creating actors, groups or packages, leases, task history, autoscaler requests).
    """
    b, text = st.builds, st.text(max_size=24)
    core = [
        b(GetObject, req=INTS, object_id=IDS, lost=IDS),
        b(CancelTask, task_id=IDS, num_returns=INTS, recursive=st.booleans()),
        b(AddBorrowers, req=INTS, object_ids=st.lists(IDS, max_size=3)),
        b(RemoveBorrowers, object_ids=st.lists(IDS, max_size=3)),
        b(PinObjects, object_ids=st.lists(IDS, max_size=3)),
        b(TaskDone, task_id=IDS, returns=st.lists(VALUE, max_size=3), elapsed=st.floats()),
        b(StreamItem, task_id=IDS, index=INTS, value=VALUE),
        b(StreamEnd, task_id=IDS, count=INTS, error=st.none() | st.builds(ErrorValue, data=st.binary(max_size=32))),
        b(ObjectReply, req=INTS, value=VALUE),
        b(BorrowersAdded, req=INTS),
    ]
    call = dict(args=INLINE, resolved=st.lists(VALUE, max_size=2), num_returns=INTS, job_id=text, owner=NOWHERE, owner_id=IDS, nested=NESTED)
    by_server = {
        "head": [
            b(ClusterInfoRequest, req=INTS),
            b(StateQuery, req=INTS, kind=st.sampled_from(STATE_KINDS) | text, limit=INTS, detail=st.booleans(),
              filters=st.lists(st.tuples(text, st.sampled_from(["=", "!=", "<", ">", "~"]) | text, text), max_size=2),
              args=st.dictionaries(st.sampled_from(["node", "depth", "id", "summary"]) | text, text, max_size=2)),
            b(GetNamedActor, req=INTS, name=text, namespace=text),
            b(WaitActor, req=INTS, actor_id=IDS, after=INTS),
            b(KillActor, req=INTS, actor_id=IDS, no_restart=st.booleans(), reason=text),
            b(ListActors, req=INTS),
            b(WaitPlacementGroup, req=INTS, pg_id=IDS, name=text, namespace=text, wait=st.booleans()),
            b(ListPlacementGroups, req=INTS),
            b(RemovePlacementGroup, req=INTS, pg_id=IDS),
            b(GetPackage, req=INTS, name=st.sampled_from(["../token", "/etc/passwd", "_ray_pkg_0.zip", "..", ""]) | text, data=st.booleans()),
        ],  # fmt: skip
        "node": [
            b(NodeInfoRequest, req=INTS),
            b(WorkerExitQuery, req=INTS, worker_id=IDS),
            b(ReadLog, req=INTS, name=st.sampled_from([*log_names, "../token", "..", ".", "/etc/passwd", ""]) | text,
              offset=INTS, tail=INTS, follow=st.booleans()),
            b(SubscribeLogs, job_id=text),
            b(ReturnLease, lease_id=IDS, kill=st.booleans()),
            b(WorkerBlocked, worker_id=IDS),
            b(WorkerUnblocked, worker_id=IDS),
        ],  # fmt: skip
        "store": [
            b(StoreCreate, req=INTS, object_id=IDS, size=st.one_of(INTS, st.integers(1, 2**20)), owner=IDS),
            b(StoreSeal, req=INTS, object_id=IDS),
            b(StoreGet, req=INTS, object_id=IDS),
            b(StoreRead, req=INTS, object_id=IDS),
            b(StoreFree, object_ids=st.lists(IDS, max_size=3)),
            b(StoreStatsRequest, req=INTS),
        ],
        "driver": core,
        "worker-core": core + [b(CallActor, call_id=IDS, method=st.sampled_from(["ping", "where", "__init__", "nope"]) | text, **call)],
        "worker-exec": [
            b(CallActor, call_id=IDS, method=st.sampled_from(["ping", "where", "__init__", "__del__", "nope"]) | text, **call),
            b(PushTask, task_id=IDS, fn_id=IDS, fn_blob=st.none() | st.binary(max_size=64), name=text, attempt=INTS,
              streaming=st.booleans(), gpu_ids=st.lists(text, max_size=2), placement_group=IDS,
              capture_child_tasks=st.booleans(), namespace=text, **call),
            b(CancelTask, task_id=IDS, num_returns=INTS, recursive=st.booleans()),
        ],
    }
    return st.sampled_from(by_server[name]).flatmap(lambda strategy: strategy)


@pytest.mark.parametrize("name", SERVERS)
def test_wellformed_requests_with_random_values_get_an_answer_or_an_error(cluster, name):
    server = servers()[name]
    logs = sorted(p.name for p in (_core.current().identity.session_dir / "logs").iterdir())
    before = rss(server.pid)

    @settings(FUZZ, max_examples=300)
    @given(message=requests(name, logs))
    def fuzz(message: Any) -> None:
        count(f"wire requests with random values: {name}", type(message).__name__)
        if os.environ.get("FUZZ_TRACE"):
            with open(os.environ["FUZZ_TRACE"], "a") as trace:
                print(repr(message), file=trace)

        trio.run(request_case, server, message)

    fuzz()
    check_cluster_serves()
    assert_bounded(server, before)


@pytest.mark.parametrize("field", ["name", "gpu_ids"])
def test_a_nul_in_a_tasks_name_or_gpu_ids_fails_that_task_not_its_worker(cluster, field):
    """Found by the suite above: a task's name becomes its worker's process title, and a NUL in
    it made setproctitle raise out of the exec loop, which killed the worker; a NUL in a GPU id
    did the same through CUDA_VISIBLE_DEVICES. The task gets an error; the worker serves on."""
    server = servers()["worker-exec"]
    ident = _core.current().identity
    task = PushTask(
        task_id=b"\1" * 16, fn_id=b"fuzz", fn_blob=b"not a pickle", name="a\0b" if field == "name" else "fuzz",
        args=Inline(data=b"", buffers=[]), resolved=[], num_returns=1, job_id=ident.job_id, owner=ident.address,
        owner_id=ident.core_id, gpu_ids=["0\0"] if field == "gpu_ids" else [],
    )  # fmt: skip

    async def run() -> None:
        async with connection(server) as bystander:
            async with connection(server) as caller:
                await caller._send_direct(task)
                with trio.fail_after(WAIT):
                    reply = await caller.receive()
                assert isinstance(reply, TaskDone) and reply.task_id == task.task_id, reply
                assert [type(value) for value in reply.returns] == [ErrorValue], reply
            await still_serving(server, bystander, 3)

    trio.run(run)
    assert psutil.pid_exists(server.pid)
    check_cluster_serves()

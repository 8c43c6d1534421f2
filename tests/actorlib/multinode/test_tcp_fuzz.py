"""Fuzzing the TCP listeners of a cluster started with a TCP address (head 127.0.0.1, a node on
127.0.0.2): the same inputs as ``integration/test_protocol.py`` sends the Unix sockets, sent over TCP.

The listeners: the head's cluster port, each node's (the head's own node and 127.0.0.2's), each
store's, this driver's core server, and an actor's core and exec servers (the exec one is a
worker's own select loop, not trio's). A test first checks that these are every TCP listener the
cluster's head, node and actor processes have (HTTP aside), so a new listener cannot go unfuzzed.
Per listener, hypothesis sends strangers' input before the handshake, bad frames after a valid
one, well-formed requests with random values, and big frames abandoned half-way; after every
example a bystander opened before the bad connection gets an answer, after each batch a real task
and actor call run, and the serving process's RSS is compared. Counts tried: ``tests/fuzzcount.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psutil
import pytest
import trio
from hypothesis import given, settings

import actorlib
from actorlib import _core, _wire
from actorlib._core._arguments import pack
from actorlib._wire import CallActor, ClusterInfoRequest, CoreMessage, GetObject, HeadMessage, NodeInfoRequest, NodeMessage
from actorlib._wire import StoreMessage, StoreStatsRequest
from actorlib._wire._messages import ClusterInfoReply, NodeView

from ...fuzzcount import count
from ..integration.test_protocol import (
    FUZZ,
    WAIT,
    Server,
    abandoned_big_frames,
    after_handshake,
    authenticated,
    bad_frame_case,
    before_handshake,
    request_case,
    requests,
    rss,
    stranger_case,
)
from .conftest import MultiNode

pytestmark = pytest.mark.slow
RSS_GROWTH_LIMIT = 64 * 2**20
# Fewer than on the Unix sockets (the same server code behind both): TCP adds the transport only.
BEFORE, AFTER, REQUESTS, ABANDONED = 50, 60, 50, 6
ROLES = ["head", "head-node", "node", "head-store", "store", "driver", "actor-core", "actor-exec"]
UNION_OF = {"head": "head", "head-node": "node", "node": "node", "head-store": "store", "store": "store",
            "driver": "driver", "actor-core": "worker-core", "actor-exec": "worker-exec"}  # fmt: skip


@actorlib.remote(resources={"far": 1})
class FarTarget:
    """An actor on 127.0.0.2, reached over TCP from here."""

    def ping(self) -> str:
        return "pong"

    def where(self) -> tuple[str, int]:
        return _core.current().identity.address, os.getpid()


@actorlib.remote(resources={"far": 0.01})
def far_ping() -> str:
    return "pong"


def tcp_part(address: str) -> str:
    (part,) = [p for p in _wire.parts(address) if not _wire.is_unix(p)]
    return part


def tcp_listeners(pid: int) -> set[str]:
    return {f"{c.laddr.ip}:{c.laddr.port}" for c in psutil.Process(pid).net_connections("inet") if c.status == "LISTEN"}


class Cluster(MultiNode):
    servers: dict[str, Server]
    actor: Any
    http: str


@pytest.fixture(scope="module")
def cluster():
    multi = Cluster([{"ip": "127.0.0.2", "cpus": 2, "resources": {"far": 2}}])
    with multi.connected():
        multi.http = json.loads(next(Path(multi.tmp).glob("actorlib-*/session_2*/head.json")).read_text()).get("dashboard", "")
        multi.actor = FarTarget.remote()
        core, actor_pid = actorlib.get(multi.actor.where.remote(), timeout=60)
        multi.servers = servers(multi, tcp_part(core), actor_pid)
        yield multi


async def node_views(address: str) -> list[NodeView]:
    """The head's view of its live nodes (each with its addresses), asked over its TCP port."""
    channel = await authenticated(address, HeadMessage)
    try:
        await channel._send_direct(ClusterInfoRequest(req=1))
        with trio.fail_after(WAIT):
            reply = await channel.receive()
        assert isinstance(reply, ClusterInfoReply), reply
        return [view for view in reply.nodes if view.alive]
    finally:
        await channel.stream.aclose()


def servers(multi: Cluster, actor_core: str, actor_pid: int) -> dict[str, Server]:
    """Every TCP listener of the cluster by role, each with a request it answers."""
    ident = _core.current().identity
    views = trio.run(node_views, multi.address)
    (head_pid,) = [view.pid for view in views if view.is_head]
    (actor_exec,) = tcp_listeners(actor_pid) - {actor_core}
    no_object = b"\0" * 16

    def call_ping(req: int) -> CallActor:
        return CallActor(
            call_id=req.to_bytes(8, "big"), method="ping", args=pack(_core.current(), "ping", (), {})[0], resolved=[],
            num_returns=1, job_id=ident.job_id, owner=ident.address, owner_id=ident.core_id,
        )  # fmt: skip

    found = {
        "head": Server("head", multi.address, HeadMessage, lambda r: ClusterInfoRequest(req=r), head_pid),
        "driver": Server("driver", tcp_part(ident.address), CoreMessage, lambda r: GetObject(req=r, object_id=no_object), os.getpid()),
        "actor-core": Server("actor-core", actor_core, CoreMessage, lambda r: GetObject(req=r, object_id=no_object), actor_pid),
        "actor-exec": Server("actor-exec", actor_exec, CoreMessage, call_ping, actor_pid),
    }  # fmt: skip
    for view in views:
        prefix = "head-" if view.is_head else ""
        found[prefix + "node"] = Server(prefix + "node", tcp_part(view.address), NodeMessage, lambda r: NodeInfoRequest(req=r), view.pid)
        found[prefix + "store"] = Server(prefix + "store", tcp_part(view.store), StoreMessage, lambda r: StoreStatsRequest(req=r), view.pid)
    assert sorted(found) == sorted(ROLES), sorted(found)
    return found


def check_cluster_serves(cluster: Cluster) -> None:
    assert actorlib.get(far_ping.remote(), timeout=60) == "pong"
    assert actorlib.get(cluster.actor.ping.remote(), timeout=60) == "pong"


def assert_bounded(server: Server, before: int) -> None:
    grown = rss(server.pid) - before
    assert grown < RSS_GROWTH_LIMIT, f"{server.name}'s RSS grew by {grown / 2**20:.0f} MiB"


# ---- the suites ---------------------------------------------------------------------------


def test_these_are_every_tcp_listener_of_the_head_the_node_and_the_actor(cluster):
    by_pid: dict[int, set[str]] = {}
    for server in cluster.servers.values():
        by_pid.setdefault(server.pid, set()).add(server.address)
    http = {cluster.http.removeprefix("http://")} if cluster.http else set()
    for pid, known in by_pid.items():
        assert tcp_listeners(pid) - http == known, (pid, tcp_listeners(pid), known)
    for server in cluster.servers.values():
        host, _ = _wire.split_host_port(server.address)
        assert _wire.is_loopback(host), server.address


@pytest.mark.parametrize("name", ROLES)
def test_tcp_strangers_get_nothing_and_cannot_disturb_anyone(cluster, name):
    server = cluster.servers[name]
    before = rss(server.pid)

    @settings(FUZZ, max_examples=BEFORE)
    @given(case=before_handshake())
    def fuzz(case: tuple[str, bytes]) -> None:
        kind, data = case
        count(f"TCP before handshake: {name}", kind)
        trio.run(stranger_case, server, data)

    fuzz()
    check_cluster_serves(cluster)
    assert_bounded(server, before)


@pytest.mark.parametrize("name", ROLES)
def test_tcp_bad_frames_after_the_handshake_close_only_that_connection(cluster, name):
    server = cluster.servers[name]
    before = rss(server.pid)

    @settings(FUZZ, max_examples=AFTER)
    @given(case=after_handshake(server.union))
    def fuzz(case: tuple[str, bytes]) -> None:
        kind, data = case
        count(f"TCP after handshake: {name}", kind)
        trio.run(bad_frame_case, server, data)

    fuzz()
    check_cluster_serves(cluster)
    assert_bounded(server, before)


@pytest.mark.parametrize("name", ROLES)
def test_tcp_wellformed_requests_with_random_values_get_an_answer_or_an_error(cluster, name):
    server = cluster.servers[name]
    logs = sorted(p.name for p in (_core.current().identity.session_dir / "logs").iterdir())
    before = rss(server.pid)

    @settings(FUZZ, max_examples=REQUESTS)
    @given(message=requests(UNION_OF[name], logs))
    def fuzz(message: Any) -> None:
        count(f"TCP requests with random values: {name}", type(message).__name__)
        trio.run(request_case, server, message)

    fuzz()
    check_cluster_serves(cluster)
    assert_bounded(server, before)


@pytest.mark.parametrize("name", ROLES)
def test_tcp_big_frames_abandoned_half_way_leave_no_memory_behind(cluster, name):
    server = cluster.servers[name]
    before = rss(server.pid)

    trio.run(abandoned_big_frames, server, ABANDONED, f"TCP after handshake: {name}")
    check_cluster_serves(cluster)
    assert_bounded(server, before)

"""The head's word on a dead node, in order: the node's own workers and actors hear it first, and
only once they stopped do the others (drivers, other nodes' workers) — over real sockets, with
the test playing the node and the processes."""

from __future__ import annotations

import trio

from actorlib._head import _service
from actorlib._head._registry import Registry
from actorlib._head._service import HeadService
from actorlib._wire import (
    ClusterInfoReply,
    ClusterInfoRequest,
    HeadMessage,
    NodeDied,
    NodeMember,
    NodeRegistered,
    NodeView,
    RegisterNode,
    connect,
    new_token,
    unix_address,
)


def view(node_id: bytes) -> NodeView:
    return NodeView(
        node_id=node_id, address=f"unix:/nowhere/{node_id.hex()}", store="", hostname="h", ip="127.0.0.2", pid=1,
        alive=True, total={"CPU": 1.0}, available={"CPU": 1.0}, session_dir="",
    )  # fmt: skip


async def ask(channel) -> ClusterInfoReply:
    """What the head says of the cluster now (its next message must be the answer)."""
    channel.send_nowait(ClusterInfoRequest(req=1))
    reply = await channel.receive()
    assert isinstance(reply, ClusterInfoReply), f"heard {reply!r} first"
    return reply


def alive(reply: ClusterInfoReply, node_id: bytes) -> bool:
    return any(n.node_id == node_id and n.alive for n in reply.nodes)


async def test_a_dead_nodes_processes_stop_before_anyone_else_hears_it(tmp_path, monkeypatch):
    """Regression (the chaos suite's frozen node): every client heard NodeDied at once, so a
    driver could see the node dead while its actor, not yet scheduled to hear it, still served
    calls, and its tasks still ran; there was no point at which its work had stopped."""
    monkeypatch.setattr(_service, "FENCE_WAIT", 0.2, raising=False)  # the wait for a process that never goes, below
    token = new_token()
    head = HeadService(unix_address(tmp_path / "head.sock"), token, Registry(), node_timeout=60)
    async with trio.open_nursery() as nursery:
        address = await nursery.start(head.run)

        async def client(name: str):
            return await connect(nursery, address, token, HeadMessage, name=name)

        async def node_with_a_member(node_id: bytes):
            node = await client(f"node:{node_id.hex()}")
            node.send_nowait(RegisterNode(req=0, node=view(node_id)))
            assert isinstance(await node.receive(), NodeRegistered)
            member = await client("worker:" + node_id.hex())
            member.send_nowait(NodeMember(node_id=node_id))
            await ask(member)  # answered after the NodeMember before it: the head knows it now
            return node, member

        driver = await client("driver:1")
        quick, its_worker = await node_with_a_member(b"q" * 16)
        assert alive(await ask(driver), b"q" * 16)
        with trio.fail_after(30):
            await quick.aclose()  # the node's connection closes: it is dead
            told = await its_worker.receive()
            assert isinstance(told, NodeDied) and told.node_id == b"q" * 16
            # While its worker is up, nobody else hears it, and the node is listed alive.
            assert alive(await ask(driver), b"q" * 16)
            await its_worker.aclose()  # it stops (a worker kills itself and its process group)
            told = await driver.receive()
            assert isinstance(told, NodeDied) and told.node_id == b"q" * 16
            assert not alive(await ask(driver), b"q" * 16)

        # A process that cannot stop (frozen itself, or cut off from the head) holds the news
        # back only FENCE_WAIT seconds.
        stuck, its_stuck_worker = await node_with_a_member(b"s" * 16)
        with trio.fail_after(_service.FENCE_WAIT + 30):
            await stuck.aclose()
            assert isinstance(await its_stuck_worker.receive(), NodeDied)
            told = await driver.receive()
            assert isinstance(told, NodeDied) and told.node_id == b"s" * 16
        assert not its_stuck_worker.closed  # the head did not wait for it for ever
        for channel in (its_stuck_worker, driver):
            await channel.aclose()
        nursery.cancel_scope.cancel()

"""``actorlib status``: nodes, resources used/total, pending demands."""

from __future__ import annotations

import click
import trio

from .._driver._discovery import find
from .._node import _resources as res
from .._wire import ClusterInfoReply, ClusterInfoRequest, HeadMessage, NodeView, connect


@click.command()
@click.option("--address", envvar="ACTORLIB_ADDRESS", default="auto", show_default=True, help="The head's address.")
@click.option("-v", "--verbose", is_flag=True, help="Also show each node.")
def status(address: str, verbose: bool) -> None:
    """Show the cluster's nodes, resource usage and pending demands."""
    try:
        found = find(address)
        nodes = trio.run(_cluster, found.head, found.token)
    except (ConnectionError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(render(found.head, nodes, verbose))


async def _cluster(head: str, token: str) -> list[NodeView]:
    async with trio.open_nursery() as nursery:
        channel = await connect(nursery, head, token, HeadMessage, name="cli:00")
        channel.send_nowait(ClusterInfoRequest(req=1))
        reply = await channel.receive()
        await channel.aclose()
        nursery.cancel_scope.cancel()
    assert isinstance(reply, ClusterInfoReply)
    return reply.nodes


def render(head: str, nodes: list[NodeView], verbose: bool) -> str:
    """The status report (pure: tested without a cluster)."""
    alive = [n for n in nodes if n.alive]
    dead = [n for n in nodes if not n.alive]
    lines = [f"Cluster at {head}", f"Nodes: {len(alive)} healthy, {len(dead)} dead"]
    for node in dead:
        lines.append(f"  dead: {node.node_id.hex()[:12]} ({node.ip})")
    total: dict[str, float] = {}
    free: dict[str, float] = {}
    for node in alive:
        res.add(total, node.total)
        res.add(free, node.available)
    lines.append("Resources (used / total):")
    for name in sorted(total):
        lines.append(f"  {_line(name, total[name] - free.get(name, 0.0), total[name])}")
    pending = sum(n.pending for n in alive)
    lines.append(f"Pending lease requests: {pending}")
    if verbose:
        for node in alive:
            role = "head" if node.is_head else "node"
            lines.append(f"{role} {node.node_id.hex()[:12]} at {node.ip} (pid {node.pid}), {node.pending} pending")
            for name in sorted(node.total):
                used = node.total[name] - node.available.get(name, 0.0)
                lines.append(f"    {_line(name, used, node.total[name])}")
    return "\n".join(lines)


def _line(name: str, used: float, total: float) -> str:
    if name in ("memory", "object_store_memory"):
        return f"{name:<22} {used / 2**30:8.2f} / {total / 2**30:.2f} GiB"
    return f"{name:<22} {used:8g} / {total:g}"

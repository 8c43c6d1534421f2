"""Where a job's entrypoint runs (pure): the head node unless it asks for resources; else a node
that has them free now, or none yet (it waits), or none ever (it fails, naming the resource)."""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from .._node import _resources as res
from .._wire import NodeView


class Choice(msgspec.Struct, frozen=True):
    """Run it on ``node_id`` now; or wait (``waiting`` says for what); or never (``infeasible``)."""

    node_id: bytes | None = None
    waiting: str = ""
    infeasible: str = ""


def pick_node(
    shape: Mapping[str, float],
    nodes: list[NodeView],
    held: Mapping[bytes, Mapping[str, float]],
    scalable: list[dict[str, float]] = [],  # noqa: B006 (never mutated)
) -> Choice:
    """The node for an entrypoint asking for ``shape`` (``{}``: no resources).

    ``nodes``: the live nodes as last seen; ``held``: what entrypoints sent to a node
    hold there and its view may not show yet; ``scalable``: the resources of node types
    the autoscaler may still add. Without resources an entrypoint runs on the head
    node, as in Ray; with them, on the head node if it has them free, else on the node
    with the most free CPUs among those that have them. A draining node (the
    autoscaler is stopping it) takes none.
    """
    shape = res.normalize(shape)
    live = [node for node in nodes if node.alive]
    if not shape:
        head = next((node for node in live if node.is_head), None)
        return Choice(head.node_id) if head is not None else Choice(waiting="the head node is not up")
    feasible = [node for node in live if res.infeasible_reason(shape, node.total) is None and not node.draining]
    if not feasible:
        if any(res.infeasible_reason(shape, offer) is None for offer in scalable):
            return Choice(waiting=f"waiting for the autoscaler to add a node with {res.describe(shape)}")
        return Choice(infeasible=_infeasible(shape, live))
    free = [node for node in feasible if res.fits(shape, _free(node, held.get(node.node_id)))]
    if not free:
        names = ", ".join(f"{node.ip} ({res.describe(_free(node, held.get(node.node_id)))})" for node in feasible)
        return Choice(waiting=f"waiting for {res.describe(shape)} to be free on a node that has it: {names}")
    best = max(free, key=lambda node: (node.is_head, _free(node, held.get(node.node_id)).get(res.CPU, 0.0)))
    return Choice(best.node_id)


def _free(node: NodeView, held: Mapping[str, float] | None) -> dict[str, float]:
    free = {name: qty for name, qty in node.available.items() if name != "object_store_memory"}
    if held:
        res.subtract(free, held)
    return free


def _infeasible(shape: Mapping[str, float], live: list[NodeView]) -> str:
    """Why no live node can ever run it: the resources none has enough of, or that none has together."""
    most = {name: max((node.total.get(name, 0.0) for node in live), default=0.0) for name in shape}
    short = [f"{name}={qty:g} (the most any node has: {most[name]:g})" for name, qty in shape.items() if most[name] < qty]
    nodes = "; ".join(f"{node.ip}: {res.describe(_without_store(node.total))}" for node in live) or "none"
    if short:
        return f"no node of the cluster has {', '.join(short)} (nodes: {nodes})"
    return f"no node of the cluster has all of {res.describe(shape)} at once (nodes: {nodes})"


def _without_store(total: Mapping[str, float]) -> dict[str, float]:
    return {name: qty for name, qty in total.items() if name != "object_store_memory"}

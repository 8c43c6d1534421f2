"""The state API's one entry point in the head: ``StateService.answer(StateQuery)``.

The head answers from what it owns (nodes, actors, placement groups,
drivers) and asks every live node for the rest (its supervision tree,
workers, tasks, objects, log files), concurrently, each within
``NODE_QUERY_TIMEOUT``; a node that does not answer is named in the
result's ``partial`` list instead of failing the query.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgspec
import trio

from .. import _state
from .._state import ActorState, ClusterTree, NodeState, NodeTree, PlacementGroupState, QueryError
from .._wire import ActorView, NodeView, PlacementGroupView, StateQuery

NODE_QUERY_TIMEOUT = 5.0
_encode = msgspec.msgpack.Encoder().encode
NODE_KINDS: dict[str, Any] = {
    "tasks": list[_state.TaskState],
    "workers": list[_state.WorkerState],
    "objects": list[_state.ObjectState],
    "logs": list[_state.LogFile],
    "tree": NodeTree,
    "stats": _state.NodeStats,
    "memory": _state.NodeMemory,
}
_decoders = {kind: msgspec.msgpack.Decoder(type_) for kind, type_ in NODE_KINDS.items()}
ACTOR_STATES = {"PENDING": "PENDING_CREATION"}


class StateService:
    """Answers state queries from the head's own records and its nodes' answers."""

    def __init__(
        self,
        nodes: Callable[[], list[Any]],
        node_views: Callable[[], list[NodeView]],
        actors: Callable[[], list[ActorView]],
        groups: Callable[[], list[PlacementGroupView]],
        jobs: Callable[[], list[_state.JobState]],
    ) -> None:
        self._nodes = nodes
        self._node_views = node_views
        self._actors = actors
        self._groups = groups
        self.jobs = jobs  # drivers; the head's job manager replaces it to join its submitted jobs in

    async def answer(self, query: StateQuery) -> bytes:
        """The wire form of ``result(query)``: msgpack (the timeline: Chrome trace JSON)."""
        result = await self.result(query)
        return json.dumps(result).encode() if query.kind == "timeline" else _encode(result)

    async def result(self, query: StateQuery) -> Any:
        """The one entry point: the ``actorlib._state`` Struct answering ``query`` (a ClusterTree,
        a ListResult, a Summary; the timeline's trace events). Every face serves this: the CLI
        and ``actorlib.util.state`` over the wire, HTTP as JSON (``msgspec.json.encode``).
        Raises QueryError naming what is wrong with the query."""
        args = query.args
        if query.kind == "tree":
            return await self.tree(args.get("node", ""), _int(args.get("depth", "-1"), "depth"))
        if query.kind == "timeline":
            tasks, _ = await self._from_nodes("tasks")
            return _state.chrome_trace([task for task in tasks if task.start_time])  # started ones
        if query.kind == "stats":  # each live node's running numbers (the dashboard's plots, /metrics)
            stats, partial = await self._from_nodes("stats")
            return _state.StatsResult(nodes=stats, partial=partial)
        if query.kind == "memory":  # every node's objects and who holds references (``actorlib memory``)
            nodes, partial = await self._from_nodes("memory")
            return _state.MemoryResult(nodes=_state.join_memory(nodes), partial=partial)
        if query.kind == "summary":
            kind = _state.check_kind(args.get("of", ""))
            items, partial = await self.items(kind)
            return _state.summarize(kind, items, partial)
        kind = _state.check_kind(query.kind)
        filters = _state.check_filters(kind, query.filters)
        limit = _state.check_limit(query.limit)
        items, partial = await self.items(kind)
        if "id" in args:
            items = _state.by_id(kind, items, args["id"])
        return _state.select(kind, items, filters, limit, partial)

    async def items(self, kind: str) -> tuple[list[Any], list[str]]:
        """Every item of ``kind`` the cluster knows, and what could not be asked."""
        if kind == "nodes":
            return [_node_state(view) for view in self._node_views()], []
        if kind == "actors":
            return [_actor_state(view) for view in self._actors()], []
        if kind == "placement_groups":
            return [_group_state(view) for view in self._groups()], []
        if kind == "jobs":
            return self.jobs(), []
        return await self._from_nodes(kind)

    async def _from_nodes(self, kind: str) -> tuple[list[Any], list[str]]:
        answers = await self._ask_all(kind)
        items: list[Any] = []
        partial = []
        for node, answer in answers:
            if isinstance(answer, str):
                partial.append(f"node {node.node_id.hex()[:12]}: {answer}")
            else:
                items += answer if isinstance(answer, list) else [answer]
        if kind == "tasks":
            items = _state.merge_tasks(items)
        return items, partial

    async def tree(self, node_prefix: str = "", depth: int = -1) -> ClusterTree:
        """Every node's supervision tree (dead nodes with their last view and no tree)."""
        answers = dict((node.node_id, answer) for node, answer in await self._ask_all("tree", node_prefix))
        trees = []
        for view in self._node_views():
            node_id = view.node_id.hex()
            if node_prefix and not node_id.startswith(node_prefix):
                continue
            answer = answers.get(view.node_id)
            if isinstance(answer, NodeTree):
                tree = answer
                tree.seconds_since_heartbeat = view.silent
                if depth >= 0 and tree.root is not None:
                    tree.root = _state.cut(tree.root, depth)
            else:
                error = "the node is dead" if not view.alive else (answer or "the node did not answer")
                tree = NodeTree(
                    node_id=node_id, hostname=view.hostname, ip=view.ip, pid=view.pid, alive=view.alive,
                    is_head=view.is_head, resources_total=view.total, resources_available=view.available, error=error,
                )  # fmt: skip
            trees.append(tree)
        if node_prefix and not trees:
            raise QueryError(f"no node whose id starts with {node_prefix!r}")
        return ClusterTree(nodes=trees)

    async def _ask_all(self, kind: str, node_prefix: str = "") -> list[tuple[Any, Any]]:
        nodes = [n for n in self._nodes() if n.node_id.hex().startswith(node_prefix)]
        answers: list[Any] = [None] * len(nodes)

        async def ask(index: int, node: Any) -> None:
            answers[index] = "did not answer within {:g}s".format(NODE_QUERY_TIMEOUT)
            with trio.move_on_after(NODE_QUERY_TIMEOUT):
                try:
                    answers[index] = _decoders[kind].decode(await node.query(kind))
                except Exception as exc:  # one node's failure makes the answer partial, not an error
                    answers[index] = f"{type(exc).__name__}: {exc}"

        async with trio.open_nursery() as nursery:
            for index, node in enumerate(nodes):
                nursery.start_soon(ask, index, node)
        return list(zip(nodes, answers))


def _int(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise QueryError(f"{name} must be an integer, got {text!r}") from None


def _node_state(view: NodeView) -> NodeState:
    return NodeState(
        node_id=view.node_id.hex(), node_ip=view.ip, state="ALIVE" if view.alive else "DEAD",
        is_head_node=view.is_head, node_name=view.hostname, pid=view.pid, resources_total=view.total,
        resources_available=view.available, pending=view.pending, seconds_since_heartbeat=view.silent,
        address=view.address,
    )  # fmt: skip


def _actor_state(view: ActorView) -> ActorState:
    return ActorState(
        actor_id=view.actor_id.hex(), class_name=view.class_name, state=ACTOR_STATES.get(view.state, view.state),
        name=view.name, namespace=view.namespace, job_id=view.job_id, node_id=view.node_id.hex(), pid=view.pid,
        num_restarts=view.restarts, death_cause=view.cause if view.state == "DEAD" else "",
        is_detached=view.detached, required_resources=view.resources, placement_group_id=view.placement_group.hex(),
    )  # fmt: skip


def _group_state(view: PlacementGroupView) -> PlacementGroupState:
    return PlacementGroupState(
        placement_group_id=view.pg_id.hex(), state=view.state, strategy=view.strategy, bundles=view.bundles,
        bundle_nodes=[n.hex() for n in view.nodes], name=view.name, namespace=view.namespace, job_id=view.job_id,
        is_detached=view.detached, reason=view.reason,
    )  # fmt: skip

"""The head's placement groups: where their bundles go, reserved atomically on the nodes.

A group is placed by one task, in creation order. For a group it picks a node
per bundle (``_placement.place`` over the nodes' free resources), then runs a
two-phase reservation: every chosen node *prepares* its bundles (sets their
resources aside if they fit now); if all agree, each *commits* (offers the
bundles as the group's resources); if any refuses, the prepared ones are
released and the group waits for resources to change. A group is therefore
never half-reserved.

Bundles on a node that dies are placed again (the group is RESCHEDULING until
then); a group whose owner exits is removed unless it is detached.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import msgspec
import trio

from .. import _ids
from .. import _placement as pg
from .._history import History
from .._node import _resources as res
from .._wire import Channel, PlacementGroupSpec, PlacementGroupView
from ._state import MemoryState, StateStore

log = logging.getLogger("actorlib.head")

PENDING, CREATED, RESCHEDULING, REMOVED = "PENDING", "CREATED", "RESCHEDULING", "REMOVED"
RETRY_EVERY = 0.2  # seconds between attempts to place waiting groups
REMOVED_GROUPS_KEPT = 1000  # removed groups remembered (their views), for listing; oldest forgotten first


class _Group:
    __slots__ = ("view", "owner", "changed")

    def __init__(self, view: PlacementGroupView, owner: Channel | None) -> None:
        self.view = view
        self.owner = owner
        self.changed = trio.Event()

    @property
    def pg_id(self) -> bytes:
        return self.view.pg_id


class PlacementGroups:
    """Every placement group of the cluster, and the task that places them."""

    def __init__(
        self, nodes: Callable[[], list[Any]], state: StateStore | None = None, *, removed_kept: int = REMOVED_GROUPS_KEPT
    ) -> None:
        self._nodes = nodes
        self._state = state or MemoryState()
        self._groups: dict[bytes, _Group] = {}  # groups not removed
        self._removed: History[bytes, PlacementGroupView] = History(removed_kept)
        self._names: dict[tuple[str, str], bytes] = {}
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None
        self.on_created: Callable[[bytes], None] = lambda pg_id: None  # actors parked on it may go
        self.on_removed: Callable[[bytes, str], None] = lambda pg_id, reason: None

    # ---- requests ------------------------------------------------------------------

    def create(self, spec: PlacementGroupSpec, owner: Channel | None) -> str:
        """Register a group (placed as soon as resources allow); an error message, or ""."""
        try:
            pg.check_bundles(spec.bundles)
            pg.check_strategy(spec.strategy)
        except (TypeError, ValueError) as exc:
            return str(exc)
        if spec.name and self.named(spec.name, spec.namespace) is not None:
            return f"a placement group named {spec.name!r} already exists in namespace {spec.namespace!r}"
        view = PlacementGroupView(
            pg_id=spec.pg_id, bundles=spec.bundles, strategy=spec.strategy, state=PENDING,
            nodes=[b""] * len(spec.bundles), name=spec.name, namespace=spec.namespace,
            detached=spec.detached, job_id=spec.job_id,
        )  # fmt: skip
        group = _Group(view, None if spec.detached else owner)
        self._groups[spec.pg_id] = group
        if spec.name:
            self._names[(spec.namespace, spec.name)] = spec.pg_id
        self._state.save_group(view)
        self.wake()
        return ""

    def remove(self, pg_id: bytes, reason: str = "removed by remove_placement_group()") -> str:
        group = self._groups.get(pg_id)
        if group is None:
            return "" if pg_id in self._removed else f"no placement group {pg_id.hex()}"
        nodes = {node for node in group.view.nodes if node}
        self._set(group, state=REMOVED, reason=reason)
        self._forget(group)
        self._state.forget_group(pg_id)
        for node_id in nodes:
            self._spawn(self._release, node_id, pg_id, [], reason)
        self.on_removed(pg_id, reason)
        self.wake()  # its resources are free again
        return ""

    async def wait(self, pg_id: bytes) -> PlacementGroupView | None:
        """The group's view once CREATED or REMOVED (None if unknown)."""
        group = self._groups.get(pg_id)
        if group is None:
            return self._removed.get(pg_id)
        while group.view.state not in (CREATED, REMOVED):  # a removed group leaves the table: watch this one
            await group.changed.wait()
        return group.view

    def get(self, pg_id: bytes) -> PlacementGroupView | None:
        """A group's view: live, or removed and still remembered (None: unknown)."""
        group = self._groups.get(pg_id)
        return group.view if group is not None else self._removed.get(pg_id)

    def _forget(self, group: _Group) -> None:
        """A removed group leaves the table; its view goes to the bounded history."""
        view = group.view
        self._groups.pop(view.pg_id, None)
        if self._names.get((view.namespace, view.name)) == view.pg_id:
            del self._names[(view.namespace, view.name)]
        self._removed.add(view.pg_id, view)

    def named(self, name: str, namespace: str) -> PlacementGroupView | None:
        pg_id = self._names.get((namespace, name))
        view = self.get(pg_id) if pg_id else None
        return view if view is not None and view.state != REMOVED else None

    def views(self) -> list[PlacementGroupView]:
        """Every group not removed, then the removed ones still remembered (oldest first)."""
        return [group.view for group in self._groups.values()] + self._removed.values()

    def owner_gone(self, owner: Channel) -> None:
        for group in [g for g in self._groups.values() if g.owner is owner]:
            self.remove(group.pg_id, "its owner exited")

    def claim(self, owner: Channel, pg_ids: list[bytes]) -> None:
        """After a head restart, the owner of these non-detached groups reconnected."""
        for pg_id in pg_ids:
            group = self._groups.get(pg_id)
            if group is not None and group.owner is None and not group.view.detached and group.view.state != REMOVED:
                group.owner = owner

    def remove_unclaimed(self) -> None:
        """After a head restart's grace period: non-detached groups whose owner did not come back."""
        for group in list(self._groups.values()):
            if group.owner is None and not group.view.detached and group.view.state != REMOVED:
                self.remove(group.pg_id, "its owner did not come back after the head restarted")

    # ---- nodes ------------------------------------------------------------------------

    def node_joined(self, node: Any, held: list[bytes]) -> None:
        """A node (re-)registered holding bundles of ``held``: release those of groups the
        head no longer knows (or no longer places there)."""
        for pg_id in held:
            group = self._groups.get(pg_id)
            if group is None or group.view.state == REMOVED or node.node_id not in group.view.nodes:
                self._spawn(self._release, node.node_id, pg_id, [], "the head does not know this placement group")
        self.wake()

    def node_died(self, node_id: bytes) -> None:
        """Bundles on a dead node are placed again."""
        for group in self._groups.values():
            view = group.view
            if view.state == REMOVED or node_id not in view.nodes:
                continue
            nodes = [b"" if node == node_id else node for node in view.nodes]
            self._set(group, nodes=nodes, state=RESCHEDULING, reason="a node with some of its bundles died")
        self.wake()

    def recover(self) -> None:
        """Load the groups of the previous head; bundles whose node does not return are placed again."""
        for view in self._state.groups():
            group = _Group(msgspec.structs.replace(view, state=RESCHEDULING if any(view.nodes) else PENDING), None)
            self._groups[view.pg_id] = group
            if view.name:
                self._names[(view.namespace, view.name)] = view.pg_id

    def forget_missing_nodes(self) -> None:
        """After a head restart's grace period: bundles on nodes that did not come back are lost."""
        live = {node.node_id for node in self._nodes()}
        for group in self._groups.values():
            view = group.view
            if view.state == REMOVED:
                continue
            nodes = [node if node in live else b"" for node in view.nodes]
            state = CREATED if all(nodes) else (RESCHEDULING if any(nodes) else PENDING)
            self._set(group, nodes=nodes, state=state)
            if state == CREATED:
                self.on_created(group.pg_id)
        self.wake()

    # ---- placing ----------------------------------------------------------------------

    def wake(self) -> None:
        """Resources may have changed: try the waiting groups again."""
        self._wake.set()

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            while True:
                waiting = any(g.view.state in (PENDING, RESCHEDULING) for g in self._groups.values())
                with trio.move_on_after(RETRY_EVERY if waiting else math.inf):  # free resources are not announced
                    await self._wake.wait()
                self._wake = trio.Event()
                for group in [g for g in self._groups.values() if g.view.state in (PENDING, RESCHEDULING)]:
                    await self._try(group)

    async def _try(self, group: _Group) -> None:
        view = group.view
        nodes = {node.node_id: node for node in self._nodes()}
        fixed: list[bytes | None] = [node if node in nodes else None for node in view.nodes]
        free = {node_id: _plain(_available(node)) for node_id, node in nodes.items() if not getattr(node, "draining", False)}
        placement = pg.place(view.bundles, view.strategy, free, fixed)
        if placement is None:
            totals = {node_id: _plain(node.total) for node_id, node in nodes.items()}
            ever = pg.place(view.bundles, view.strategy, totals, [None] * len(view.bundles))
            reason = "waiting for resources" if ever is not None else _infeasible(view, list(totals.values()))
            if reason != view.reason:
                if ever is None:
                    log.warning("placement group %s cannot be placed: %s", _ids.short(view.pg_id), reason)
                self._set(group, reason=reason)
            return
        new: dict[bytes, dict[int, dict[str, float]]] = {}
        for index, node_id in enumerate(placement):
            if fixed[index] is None:
                new.setdefault(node_id, {})[index] = view.bundles[index]
        prepared: list[bytes] = []
        refused = ""
        for node_id, bundles in new.items():
            refused = await _call(nodes[node_id].prepare_bundles(view.pg_id, bundles))
            if refused:
                break
            prepared.append(node_id)
        if refused or group.view.state == REMOVED:  # all or nothing
            for node_id in prepared:
                await _call(nodes[node_id].release_bundles(view.pg_id, list(new[node_id]), "placement rolled back"))
            if refused and refused != group.view.reason:  # tried again with the next heartbeats
                self._set(group, reason=f"waiting for resources ({refused})")
            return
        for node_id in prepared:
            if not await _call(nodes[node_id].commit_bundles(view.pg_id)) and hasattr(nodes[node_id], "committed"):
                nodes[node_id].committed(view.pg_id, new[node_id])  # a remote node: its view, at once
        if group.view.state == REMOVED:  # removed while committing: the removal released it
            for node_id in prepared:
                await _call(nodes[node_id].release_bundles(view.pg_id, [], group.view.reason))
            return
        dead = [node_id for node_id in placement if node_id not in {n.node_id for n in self._nodes()}]
        nodes_now = [b"" if node_id in dead else node_id for node_id in placement]
        if dead:  # a node died while we placed: what it had is placed again
            self._set(group, nodes=nodes_now, state=RESCHEDULING)
            self.wake()
            return
        self._set(group, nodes=nodes_now, state=CREATED, reason="")
        self._state.save_group(group.view)
        log.info("placement group %s created on %d node(s)", _ids.short(view.pg_id), len(set(placement)))
        self.on_created(view.pg_id)

    async def _release(self, node_id: bytes, pg_id: bytes, indexes: list[int], reason: str) -> None:
        node = next((n for n in self._nodes() if n.node_id == node_id), None)
        if node is not None:
            await _call(node.release_bundles(pg_id, indexes, reason))
            if not indexes and hasattr(node, "released"):
                node.released(pg_id)

    def _spawn(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    def _set(self, group: _Group, **changes: Any) -> None:
        group.view = msgspec.structs.replace(group.view, **changes)
        changed, group.changed = group.changed, trio.Event()
        changed.set()


async def _call(request: Any) -> str:
    """Await a node's answer; a lost node is a refusal."""
    try:
        answer = await request
    except (ConnectionError, trio.ClosedResourceError, trio.BrokenResourceError) as exc:
        return f"lost the node: {exc}"
    return answer or ""


def _plain(resources: dict[str, float]) -> dict[str, float]:
    return {name: qty for name, qty in resources.items() if not pg.is_group_resource(name) and name != "object_store_memory"}


def _available(node: Any) -> dict[str, float]:
    return node.available if isinstance(getattr(node, "available", None), dict) else node.view().available


def _infeasible(view: PlacementGroupView, totals: list[dict[str, float]]) -> str:
    nodes = "; ".join(res.describe(total) for total in totals) or "no nodes"
    return f"no set of nodes can ever hold its bundles {view.bundles} with strategy {view.strategy} (nodes: {nodes})"

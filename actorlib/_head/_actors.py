"""The head's actor directory: every live actor's state, names per namespace, owners, waiters;
and a bounded history of dead actors (their views, not their specs)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from typing import Any

import msgspec
import trio

from .. import _ids
from .._history import History
from .._node import _resources as res
from .._wire import ActorSpec, ActorView, Channel
from ._state import MemoryState, StateStore

log = logging.getLogger("actorlib.head")

PENDING, ALIVE, RESTARTING, DEAD = "PENDING", "ALIVE", "RESTARTING", "DEAD"
UNKNOWN_GRACE = 10.0  # seconds a caller waits for an actor the head has not heard of yet
# Dead actors the head remembers (their ActorView: id, class, name, state, cause, node, pid,
# restarts), for listing and for callers that ask after the fact; the oldest are forgotten
# first. Ray keeps destroyed actors too, up to RAY_maximum_gcs_destroyed_actor_cached_count
# (100,000 in Ray 2.60). Their specs (pickled class and arguments) are dropped at death.
DEAD_ACTORS_KEPT = 1000


class _Record:
    __slots__ = ("spec", "view", "owner", "node", "changed")

    @classmethod
    def recovered(cls, view: ActorView, base: int) -> _Record:
        """A record rebuilt from what a node reports (its spec is not known here)."""
        record = cls.__new__(cls)
        record.spec = None  # type: ignore[assignment]
        record.owner = None
        record.node = None
        record.changed = trio.Event()
        record.view = msgspec.structs.replace(view, incarnation=base)
        return record

    def __init__(self, spec: ActorSpec, owner: Channel | None, base: int = 0) -> None:
        self.spec = spec
        self.owner = owner
        self.node: Any = None
        self.changed = trio.Event()
        self.view = ActorView(
            actor_id=spec.actor_id,
            state=PENDING,
            class_name=spec.class_name,
            name=spec.name,
            namespace=spec.namespace,
            methods=spec.methods,
            max_task_retries=spec.max_task_retries,
            job_id=spec.job_id,
            detached=spec.detached,
            resources=dict(spec.shape),
            placement_group=spec.placement_group,
            incarnation=base,
        )


class ActorDirectory:
    """Actors of the cluster, as the head tracks them; nodes report state changes here."""

    def __init__(
        self, nodes: Callable[[], list[Any]], state: StateStore | None = None, groups: Any = None,
        *, dead_kept: int = DEAD_ACTORS_KEPT,
    ) -> None:  # fmt: skip
        self._nodes = nodes
        self._state = state or MemoryState()
        # Incarnations count from here: above any a previous head handed out, so a caller that
        # waits for an incarnation newer than the one it saw die (WaitActor.after) is answered
        # by this head too. An actor's restarts are counted from the same base.
        self._base = self._state.next_start() << 32
        self._groups = groups  # PlacementGroups (None: no placement groups)
        self._parked: dict[bytes, list[_Record]] = {}  # placement group id -> actors waiting for it
        self._created = trio.Event()  # set (and replaced) whenever an actor is registered
        if groups is not None:
            groups.on_created = self._group_created
            groups.on_removed = self._group_removed
        self._actors: dict[bytes, _Record] = {}  # live (not DEAD) actors only
        self._dead: History[bytes, ActorView] = History(dead_kept)
        self._owned: dict[Channel, set[bytes]] = {}  # non-detached live actors, by owner
        self._names: dict[tuple[str, str], bytes] = {}
        self._spread = itertools.count()
        # After a head restart: owners' claims on actors no node reported yet, and actors
        # whose claimant exited before their node did.
        self._claims: dict[bytes, Channel] = {}
        self._unclaimed_gone: set[bytes] = set()
        # With an autoscaler: whether a node type it may add could host a placement shape, and
        # the actors that wait for such a node (no live node has room for them now).
        self.scalable: Callable[[dict[str, float]], bool] | None = None
        self._waiting: dict[bytes, _Record] = {}

    # ---- requests from owners and callers ----------------------------------------

    def create(self, spec: ActorSpec, owner: Channel, get_if_exists: bool) -> tuple[ActorView | None, str]:
        """Register and place an actor. Returns (existing view, error)."""
        if spec.name:
            existing = self._live_named(spec.name, spec.namespace)
            if existing is not None:
                if get_if_exists:
                    return existing.view, ""
                return None, f"an actor named {spec.name!r} already exists in namespace {spec.namespace!r}"
        record = _Record(spec, None, self._base)
        self._actors[spec.actor_id] = record
        if not spec.detached:
            self._set_owner(record, owner)
        created, self._created = self._created, trio.Event()
        created.set()
        if spec.name:
            self._names[(spec.namespace, spec.name)] = spec.actor_id
        if spec.detached:
            self._state.save_actor(spec)  # found again (or re-created) after a head restart
        node = self._place(record)
        if node is not None:
            record.node = node
            node.start_actor(spec, self)
        return None, ""

    def _place(self, record: _Record) -> Any:
        """The node to host an actor, by its scheduling strategy (None: it is dead, and why)."""
        spec = record.spec
        nodes = self._nodes()
        if spec.placement_group:
            return self._place_in_group(record, nodes)
        if spec.node_affinity:
            target = next((n for n in nodes if n.node_id == spec.node_affinity), None)
            if target is not None and res.infeasible_reason(spec.placement, target.total) is None:
                return target
            if not spec.soft:
                why = "is not alive" if target is None else res.infeasible_reason(spec.placement, target.total)
                self.update(spec.actor_id, DEAD, cause=f"node affinity: node {spec.node_affinity.hex()} {why}")
                return None
        nodes = [n for n in nodes if not getattr(n, "draining", False)]  # the autoscaler is stopping those
        fits = [n for n in nodes if res.infeasible_reason(spec.placement, n.total) is None]
        if self._wait_for_node(record, fits):
            return None
        if not fits:
            total = "; ".join(res.describe(n.total) for n in nodes) or "no nodes"
            reason = res.infeasible_reason(spec.placement, nodes[0].total) if nodes else "no node is up"
            self.update(spec.actor_id, DEAD, cause=f"{spec.class_name} {reason}; no node can host it ({total})")
            return None
        free = [n for n in fits if res.fits(spec.placement, _available(n))] or fits
        if spec.strategy == "SPREAD":
            return free[next(self._spread) % len(free)]
        return free[0]

    def _wait_for_node(self, record: _Record, fits: list[Any]) -> bool:
        """Park the actor until a node has room, if none has now and the autoscaler could add one."""
        shape = record.spec.placement
        if self.scalable is None or not self.scalable(shape) or any(res.fits(shape, _available(n)) for n in fits):
            return False
        self._waiting[record.spec.actor_id] = record
        return True

    def waiting_shapes(self) -> list[dict[str, float]]:
        """What the actors waiting for a node need (demand for the autoscaler)."""
        return [dict(r.spec.placement) for r in self._waiting.values() if r.view.state != DEAD and r.node is None]

    def place_waiting(self) -> None:
        """Try the actors waiting for a node again (the autoscaler calls this as nodes come and free up)."""
        waiting, self._waiting = self._waiting, {}
        for record in waiting.values():
            if record.view.state == DEAD or record.node is not None:
                continue
            placed = self._place(record)
            if placed is not None:
                record.node = placed
                if isinstance(getattr(placed, "available", None), dict):
                    res.subtract(placed.available, record.spec.placement)  # until its next heartbeat says
                placed.start_actor(record.spec, self)

    def _place_in_group(self, record: _Record, nodes: list[Any]) -> Any:
        """The node of the actor's bundle; None if it is dead or waits for its group."""
        spec = record.spec
        view = self._groups.get(spec.placement_group) if self._groups is not None else None
        if view is None or view.state == "REMOVED":
            why = view.reason if view is not None else "it does not exist"
            self.update(spec.actor_id, DEAD, cause=f"its placement group {spec.placement_group.hex()} was removed ({why})")
            return None
        if spec.bundle_index >= len(view.bundles):
            cause = f"bundle index {spec.bundle_index} is out of range: the placement group has {len(view.bundles)} bundles"
            self.update(spec.actor_id, DEAD, cause=cause)
            return None
        if view.state != "CREATED":
            self._parked.setdefault(spec.placement_group, []).append(record)
            return None
        wanted = {view.nodes[spec.bundle_index]} if spec.bundle_index >= 0 else set(view.nodes)
        hosts = [n for n in nodes if n.node_id in wanted]
        fits = [n for n in hosts if res.infeasible_reason(spec.placement, n.total) is None]
        if not fits:
            reason = res.infeasible_reason(spec.placement, hosts[0].total) if hosts else "its bundle's node is gone"
            self.update(spec.actor_id, DEAD, cause=f"{spec.class_name} does not fit its placement group bundle: {reason}")
            return None
        free = [n for n in fits if res.fits(spec.placement, _available(n))]
        return (free or fits)[0]

    def _group_created(self, pg_id: bytes) -> None:
        for record in self._parked.pop(pg_id, []):
            if record.view.state != DEAD and record.node is None:
                placed = self._place(record)
                if placed is not None:
                    record.node = placed
                    placed.start_actor(record.spec, self)

    def _group_removed(self, pg_id: bytes, reason: str) -> None:
        for record in self._parked.pop(pg_id, []):
            if record.node is None:
                self.update(record.spec.actor_id, DEAD, cause=f"its placement group was removed ({reason})")

    def _live_named(self, name: str, namespace: str) -> _Record | None:
        actor_id = self._names.get((namespace, name))
        record = self._actors.get(actor_id) if actor_id else None
        return record if record is not None and record.view.state != DEAD else None

    def named(self, name: str, namespace: str) -> ActorView | None:
        record = self._live_named(name, namespace)
        return record.view if record is not None else None

    async def wait(self, actor_id: bytes, after: int, ended: bool = False) -> ActorView | None:
        """The actor's view once ALIVE with incarnation > ``after``, or DEAD (None if unknown);
        with ``ended``, once incarnation ``after`` is over (RESTARTING: its cause says why).

        An unknown actor is waited for a while: a handle can reach another process (in a
        task's arguments) before its creator's request to create it reaches the head.
        """
        deadline = trio.current_time() + UNKNOWN_GRACE
        record = self._actors.get(actor_id)
        while record is None:
            dead = self._dead.get(actor_id)
            if dead is not None:
                return dead
            with trio.move_on_at(deadline):
                await self._created.wait()
                record = self._actors.get(actor_id)
                continue
            return None
        while True:  # a record that died stays dead: watch this one (it leaves the table at death)
            view = record.view
            if view.state == DEAD or (view.state == ALIVE and view.incarnation > after):
                return view
            if ended and view.state != ALIVE and view.incarnation >= after:
                return view
            await record.changed.wait()

    def kill(self, actor_id: bytes, no_restart: bool, reason: str) -> str:
        record = self._actors.get(actor_id)
        if record is None:
            return "" if actor_id in self._dead else f"no actor {_ids.short(actor_id)}"
        if record.view.state == DEAD:
            return ""
        if record.node is None:
            self.update(actor_id, DEAD, cause=reason)
        else:
            record.node.kill_actor(actor_id, no_restart, reason)
        return ""

    def owner_gone(self, owner: Channel) -> None:
        """The creator of non-detached actors disconnected: they die with it."""
        for actor_id in list(self._owned.pop(owner, ())):
            record = self._actors.get(actor_id)
            if record is not None and record.owner is owner:
                self.kill(actor_id, True, "its owner exited")
        for actor_id in [a for a, claimer in self._claims.items() if claimer is owner]:
            del self._claims[actor_id]
            self._unclaimed_gone.add(actor_id)  # if its node reports it later, it is killed

    def claim(self, owner: Channel, actor_ids: list[bytes]) -> None:
        """After a head restart, the owner of these non-detached actors reconnected."""
        for actor_id in actor_ids:
            record = self._actors.get(actor_id)
            if record is None:  # its node has not re-registered yet
                self._claims[actor_id] = owner
            elif record.owner is None and record.view.state != DEAD and not (record.spec is not None and record.spec.detached):
                self._set_owner(record, owner)

    def kill_unclaimed(self) -> None:
        """After a head restart's grace period: non-detached actors whose owner did not come
        back (it exited while the head was away) die, as they would have with it."""
        for record in list(self._actors.values()):
            if record.owner is None and record.view.state != DEAD and not (record.spec is not None and record.spec.detached):
                self.kill(spec_id(record), True, "its owner did not come back after the head restarted")
        self._claims.clear()
        self._unclaimed_gone.clear()

    def views(self) -> list[ActorView]:
        """Every live actor, then the dead ones still remembered (oldest first)."""
        return [record.view for record in self._actors.values()] + self._dead.values()

    def _set_owner(self, record: _Record, owner: Channel | None) -> None:
        old = self._owned.get(record.owner) if record.owner is not None else None
        if old is not None:
            old.discard(record.view.actor_id)
            if not old:
                del self._owned[record.owner]  # type: ignore[arg-type]
        record.owner = owner
        if owner is not None:
            self._owned.setdefault(owner, set()).add(record.view.actor_id)

    def _bury(self, record: _Record) -> None:
        """A dead actor leaves the live table: its view goes to the bounded history; its spec
        (pickled class and constructor arguments), owner and node go with the record."""
        actor_id = record.view.actor_id
        self._actors.pop(actor_id, None)
        self._set_owner(record, None)
        view = record.view
        if self._names.get((view.namespace, view.name)) == actor_id:
            del self._names[(view.namespace, view.name)]
        parked = self._parked.get(record.spec.placement_group) if record.spec is not None else None
        if parked is not None and record in parked:
            parked.remove(record)
        self._waiting.pop(actor_id, None)  # (for a node the autoscaler would add)
        self._dead.add(actor_id, msgspec.structs.replace(view, methods={}, address=""))

    # ---- after a head restart -------------------------------------------------------------

    def recover(self) -> None:
        """Load the detached actors of the previous head; they wait for their node to report them."""
        for spec in self._state.actors():
            if spec.actor_id not in self._actors:
                record = _Record(spec, None, self._base)
                record.view = msgspec.structs.replace(record.view, state=RESTARTING, cause="the head restarted")
                self._actors[spec.actor_id] = record
                if spec.name:
                    self._names[(spec.namespace, spec.name)] = spec.actor_id

    def place_unclaimed(self) -> None:
        """Re-create recovered actors that no node reported after the grace period."""
        for record in list(self._actors.values()):
            if record.node is None and record.spec is not None and record.view.state == RESTARTING:
                placed = self._place(record)
                if placed is not None:
                    record.node = placed
                    placed.start_actor(record.spec, self)

    # ---- nodes joining and dying ----------------------------------------------------------

    def node_joined(self, node: Any, hosted: list[ActorView]) -> None:
        """A node (re-)registered with the actors it hosts: after a head restart this is how
        the directory learns of them again."""
        for view in hosted:
            record = self._actors.get(view.actor_id)
            if record is None and view.actor_id in self._dead:
                node.kill_actor(view.actor_id, True, "the head declared it dead while its node was away")
                continue
            if record is None:
                record = _Record.recovered(view, self._base)
                self._set_owner(record, self._claims.pop(view.actor_id, None))
                self._actors[view.actor_id] = record
                created, self._created = self._created, trio.Event()
                created.set()
                if view.name:
                    self._names[(view.namespace, view.name)] = view.actor_id
            record.node = node
            self.update(view.actor_id, view.state, address=view.address, pid=view.pid, node_id=node.node_id)
            if view.actor_id in self._unclaimed_gone:
                self._unclaimed_gone.discard(view.actor_id)
                self.kill(view.actor_id, True, "its owner exited while the head was restarting")

    def node_died(self, node: Any, reason: str) -> None:
        """Re-place the restartable actors of a dead node; the others are dead."""
        for record in list(self._actors.values()):
            if record.node is not node or record.view.state == DEAD:
                continue
            spec, view = record.spec, record.view
            left = -1 if spec is None or spec.max_restarts == -1 else spec.max_restarts - view.restarts
            if spec is None or left == 0 or spec.group is not None:
                self.update(spec_id(record), DEAD, cause=f"its node died ({reason})")
                continue
            record.spec = msgspec.structs.replace(spec, max_restarts=-1 if left == -1 else left - 1)
            record.node = None
            self.update(spec.actor_id, RESTARTING, cause=f"its node died ({reason})")
            placed = self._place(record)
            if placed is not None:
                record.node = placed
                placed.start_actor(record.spec, self)

    # ---- reports from nodes ----------------------------------------------------------

    def update(self, actor_id: bytes, state: str, **fields: Any) -> None:
        """A node reports a state change (ALIVE carries address, pid; DEAD a cause)."""
        record = self._actors.get(actor_id)
        if record is None or record.view.state == DEAD:
            return
        view = record.view
        changes: dict[str, Any] = {"state": state, **fields}
        if state == ALIVE:
            changes["incarnation"] = view.incarnation + 1
            changes["restarts"] = view.incarnation - self._base
        if state != ALIVE:
            changes.setdefault("address", "")
            changes.setdefault("core", "")
            changes.setdefault("pid", 0)
        if state == DEAD:  # its view is kept (listing): where it last ran, not zeros
            changes["pid"] = changes["pid"] or view.pid
            changes["node_id"] = changes.get("node_id") or view.node_id
        record.view = msgspec.structs.replace(view, **changes)
        if state == DEAD:
            log.info("actor %s died: %s", _ids.short(actor_id), record.view.cause)
            if record.spec is not None and record.spec.detached:
                self._state.forget_actor(actor_id)
            self._bury(record)
        changed, record.changed = record.changed, trio.Event()
        changed.set()


def spec_id(record: _Record) -> bytes:
    return record.view.actor_id


def _available(node: Any) -> dict[str, float]:
    return node.available if hasattr(node, "available") and isinstance(node.available, dict) else node.view().available

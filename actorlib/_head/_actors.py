"""The head's actor directory: every actor's state, names per namespace, owners, waiters."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
import trio

from .. import _ids
from .._node import _resources as res
from .._wire import ActorSpec, ActorView, Channel

log = logging.getLogger("actorlib.head")

PENDING, ALIVE, RESTARTING, DEAD = "PENDING", "ALIVE", "RESTARTING", "DEAD"


class _Record:
    __slots__ = ("spec", "view", "owner", "node", "changed")

    def __init__(self, spec: ActorSpec, owner: Channel | None) -> None:
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
        )


class ActorDirectory:
    """Actors of the cluster, as the head tracks them; nodes report state changes here."""

    def __init__(self, nodes: Callable[[], list[Any]]) -> None:
        self._nodes = nodes
        self._actors: dict[bytes, _Record] = {}
        self._names: dict[tuple[str, str], bytes] = {}

    # ---- requests from owners and callers ----------------------------------------

    def create(self, spec: ActorSpec, owner: Channel, get_if_exists: bool) -> tuple[ActorView | None, str]:
        """Register and place an actor. Returns (existing view, error)."""
        if spec.name:
            existing = self._live_named(spec.name, spec.namespace)
            if existing is not None:
                if get_if_exists:
                    return existing.view, ""
                return None, f"an actor named {spec.name!r} already exists in namespace {spec.namespace!r}"
        record = _Record(spec, None if spec.detached else owner)
        self._actors[spec.actor_id] = record
        if spec.name:
            self._names[(spec.namespace, spec.name)] = spec.actor_id
        node = self._place(record)
        if node is not None:
            record.node = node
            node.start_actor(spec, self)
        return None, ""

    def _place(self, record: _Record) -> Any:
        spec = record.spec
        nodes = self._nodes()
        fits = [n for n in nodes if res.infeasible_reason(spec.placement, n.total) is None]
        if not fits:
            total = "; ".join(res.describe(n.total) for n in nodes) or "no nodes"
            reason = res.infeasible_reason(spec.placement, nodes[0].total) if nodes else "no node is up"
            self.update(spec.actor_id, DEAD, cause=f"{spec.class_name} {reason}; no node can host it ({total})")
            return None
        return fits[0]

    def _live_named(self, name: str, namespace: str) -> _Record | None:
        actor_id = self._names.get((namespace, name))
        record = self._actors.get(actor_id) if actor_id else None
        return record if record is not None and record.view.state != DEAD else None

    def named(self, name: str, namespace: str) -> ActorView | None:
        record = self._live_named(name, namespace)
        return record.view if record is not None else None

    async def wait(self, actor_id: bytes, after: int) -> ActorView | None:
        """The actor's view once ALIVE with incarnation > ``after``, or DEAD (None if unknown)."""
        while True:
            record = self._actors.get(actor_id)
            if record is None:
                return None
            view = record.view
            if view.state == DEAD or (view.state == ALIVE and view.incarnation > after):
                return view
            await record.changed.wait()

    def kill(self, actor_id: bytes, no_restart: bool, reason: str) -> str:
        record = self._actors.get(actor_id)
        if record is None:
            return f"no actor {_ids.short(actor_id)}"
        if record.view.state == DEAD:
            return ""
        if record.node is None:
            self.update(actor_id, DEAD, cause=reason)
        else:
            record.node.kill_actor(actor_id, no_restart, reason)
        return ""

    def owner_gone(self, owner: Channel) -> None:
        """The creator of non-detached actors disconnected: they die with it."""
        for record in list(self._actors.values()):
            if record.owner is owner and record.view.state != DEAD:
                self.kill(record.spec.actor_id, True, "its owner exited")

    def views(self) -> list[ActorView]:
        return [record.view for record in self._actors.values()]

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
            changes["restarts"] = view.incarnation
        if state != ALIVE:
            changes.setdefault("address", "")
            changes.setdefault("pid", 0)
        record.view = msgspec.structs.replace(view, **changes)
        if state == DEAD:
            log.info("actor %s died: %s", _ids.short(actor_id), record.view.cause)
        changed, record.changed = record.changed, trio.Event()
        changed.set()

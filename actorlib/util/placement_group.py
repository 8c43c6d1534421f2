"""Placement groups: reserve bundles of resources across nodes, atomically (Ray's API).

::

    pg = placement_group([{"CPU": 1, "GPU": 1}] * 2, strategy="STRICT_SPREAD")
    actorlib.get(pg.ready())            # both bundles are reserved, on two nodes
    Trainer.options(scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)).remote()
    remove_placement_group(pg)          # what runs in it is killed; its resources are free

Strategies: ``PACK`` (as few nodes as possible), ``SPREAD`` (as many as
possible), ``STRICT_PACK`` (one node, or wait), ``STRICT_SPREAD`` (a node per
bundle, or wait). A group is reserved whole or not at all; until then it is
pending (``placement_group_table()`` says why). A group is removed when the
job that created it ends, unless ``lifetime="detached"``.
"""

from __future__ import annotations

from typing import Any

from .. import _ids
from .._core import ObjectRef, current
from .._placement import check_bundles, check_strategy
from .._remote_function import remote
from .._wire import (
    CreatePlacementGroup,
    ListPlacementGroups,
    PlacementGroupSpec,
    PlacementGroupView,
    RemovePlacementGroup,
    WaitPlacementGroup,
)
from .scheduling_strategies import PlacementGroupSchedulingStrategy

__all__ = [
    "PlacementGroup",
    "get_current_placement_group",
    "get_placement_group",
    "placement_group",
    "placement_group_table",
    "remove_placement_group",
]


class PlacementGroup:
    """A handle to a placement group (picklable: pass it to tasks and actors)."""

    def __init__(self, id: bytes, bundle_specs: list[dict[str, float]] | None = None, strategy: str = "PACK") -> None:
        self.id = id
        self._bundles = bundle_specs
        self.strategy = strategy

    @property
    def bundle_specs(self) -> list[dict[str, float]]:
        """The bundles, as created."""
        if self._bundles is None:
            view = _view(self.id)
            self._bundles = list(view.bundles) if view is not None else []
        return self._bundles

    @property
    def bundle_count(self) -> int:
        return len(self.bundle_specs)

    def ready(self) -> ObjectRef:
        """An ObjectRef that resolves (to this group) once every bundle is reserved.

        It is a zero-CPU task run in the group, so it also proves the group
        can run work. It fails if the group is removed first.
        """
        strategy = PlacementGroupSchedulingStrategy(self, -1)
        return _ready.options(scheduling_strategy=strategy).remote(self)  # type: ignore[no-any-return]

    def wait(self, timeout_seconds: float = 30) -> bool:
        """Whether the group is ready within ``timeout_seconds``."""
        from .._api import wait

        ready, _ = wait([self.ready()], timeout=timeout_seconds)
        return bool(ready)

    def __reduce__(self) -> Any:
        return (PlacementGroup, (self.id, self._bundles, self.strategy))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlacementGroup) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"PlacementGroup(id={self.id.hex()!r}, bundles={self._bundles!r}, strategy={self.strategy!r})"


@remote(num_cpus=0, max_retries=0)
def _ready(group: PlacementGroup) -> PlacementGroup:
    return group


def placement_group(
    bundles: list[dict[str, float]],
    strategy: str = "PACK",
    name: str = "",
    lifetime: str | None = None,
    **unsupported: Any,
) -> PlacementGroup:
    """Reserve ``bundles`` (resource dicts) per ``strategy``; returns at once (see ``ready()``).

    Raises ValueError for an empty or malformed bundle, an unknown strategy
    or lifetime, or a name already taken in this namespace.
    """
    if unsupported:
        raise TypeError(f"placement_group() got an unsupported argument {sorted(unsupported)[0]!r}")
    checked = check_bundles(bundles)
    check_strategy(strategy)
    if lifetime not in (None, "detached"):
        raise ValueError(f"lifetime must be None or 'detached', got {lifetime!r}")
    if not isinstance(name, str):
        raise TypeError(f"name must be a string, got {name!r}")
    runtime = current()
    ident = runtime.identity
    spec = PlacementGroupSpec(
        pg_id=_ids.unique_id(), bundles=checked, strategy=strategy, name=name, namespace=ident.namespace,
        detached=lifetime == "detached", job_id=ident.job_id,
    )  # fmt: skip
    reply = runtime.call(runtime.head.request, lambda req: CreatePlacementGroup(req=req, spec=spec))
    if reply.error:
        raise ValueError(reply.error)
    if not spec.detached:
        runtime.owned_groups.add(spec.pg_id)  # claimed again if the head restarts
    return PlacementGroup(spec.pg_id, checked, strategy)


def remove_placement_group(placement_group: PlacementGroup) -> None:
    """Remove the group: tasks and actors in it are killed, its resources freed."""
    if not isinstance(placement_group, PlacementGroup):
        raise TypeError(f"remove_placement_group() takes a PlacementGroup, got {placement_group!r}")
    runtime = current()
    reply = runtime.call(runtime.head.request, lambda req: RemovePlacementGroup(req=req, pg_id=placement_group.id))
    runtime.owned_groups.discard(placement_group.id)
    if reply.error:
        raise ValueError(reply.error)


def get_placement_group(placement_group_name: str) -> PlacementGroup:
    """The live group named so in this job's namespace. Raises ValueError if there is none."""
    runtime = current()
    namespace = runtime.identity.namespace
    reply = runtime.call(
        runtime.head.request,
        lambda req: WaitPlacementGroup(req=req, name=placement_group_name, namespace=namespace, wait=False),
    )
    view = reply.view
    if view is None:
        raise ValueError(f"no placement group named {placement_group_name!r} in namespace {namespace!r}")
    return PlacementGroup(view.pg_id, list(view.bundles), view.strategy)


def get_current_placement_group() -> PlacementGroup | None:
    """The group the calling task or actor runs in; None in a driver or outside any group."""
    runtime = current()
    executor = runtime.executor
    task = executor.current if executor is not None else None
    pg_id = task.placement_group if task is not None else runtime.identity.placement_group
    return PlacementGroup(pg_id) if pg_id else None


def placement_group_table(placement_group: PlacementGroup | None = None) -> dict[str, Any]:
    """Every group (by hex id), or one group, as Ray's table shows them."""
    runtime = current()
    reply = runtime.call(runtime.head.request, lambda req: ListPlacementGroups(req=req))
    table = {view.pg_id.hex(): _row(view) for view in reply.groups}
    if placement_group is None:
        return table
    return table.get(placement_group.id.hex(), {})


def _row(view: PlacementGroupView) -> dict[str, Any]:
    return {
        "placement_group_id": view.pg_id.hex(),
        "name": view.name,
        "namespace": view.namespace,
        "strategy": view.strategy,
        "state": view.state,
        "bundles": dict(enumerate(view.bundles)),
        "bundles_to_node_id": {i: node.hex() for i, node in enumerate(view.nodes) if node},
        "is_detached": view.detached,
        "job_id": view.job_id,
        "stats": {"scheduling_state": view.reason or view.state},
    }


def _view(pg_id: bytes) -> PlacementGroupView | None:
    runtime = current()
    reply = runtime.call(runtime.head.request, lambda req: WaitPlacementGroup(req=req, pg_id=pg_id, wait=False))
    return reply.view  # type: ignore[no-any-return]

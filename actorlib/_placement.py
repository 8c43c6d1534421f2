"""Placement groups, the pure parts: bundle validation, resource names, where bundles go.

A placement group reserves *bundles* of resources on nodes. Once a bundle is
committed on a node, the node offers it as resources named after the group
(Ray's scheme, so that ``cluster_resources()`` reads the same)::

    CPU_group_<i>_<pg>     the CPUs of bundle i
    CPU_group_<pg>         the CPUs of every bundle of the group on that node
    bundle_group_<i>_<pg>  1000 per bundle: a marker even zero-CPU tasks request

A task or actor scheduled into a group asks for these names instead of the
plain ones, so the ordinary resource ledger does the rest.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")
BUNDLE = "bundle"
BUNDLE_MARKER = 1000.0  # what each committed bundle offers of its marker resource
MARKER_REQUEST = 0.001  # what every task or actor in a bundle asks of it
_QUANTUM = 10_000


def check_bundles(bundles: Any) -> list[dict[str, float]]:
    """Validate ``bundles``; raise ValueError/TypeError naming the bad one."""
    if not isinstance(bundles, Sequence) or isinstance(bundles, (str, bytes)) or not bundles:
        raise ValueError(f"bundles must be a non-empty list of resource dicts, got {bundles!r}")
    checked = []
    for index, bundle in enumerate(bundles):
        if not isinstance(bundle, Mapping):
            raise TypeError(f"bundle {index} must be a dict of resource name to quantity, got {bundle!r}")
        shape: dict[str, float] = {}
        for name, qty in bundle.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"bundle {index}: resource names must be non-empty strings, got {name!r}")
            if "_group_" in name:
                raise ValueError(f"bundle {index}: {name!r} is a placement group resource; bundles take plain ones")
            if not isinstance(qty, (int, float)) or isinstance(qty, bool) or not 0 <= qty < math.inf:
                raise ValueError(f"bundle {index}: {name} must be a finite non-negative number, got {qty!r}")
            if round(qty * _QUANTUM):
                shape[name] = float(qty)
        if not shape:
            raise ValueError(f"bundle {index} is empty: every bundle must reserve some resource, got {bundle!r}")
        checked.append(shape)
    return checked


def check_strategy(strategy: Any) -> str:
    if strategy not in STRATEGIES:
        raise ValueError(f"placement group strategy must be one of {', '.join(STRATEGIES)}; got {strategy!r}")
    return str(strategy)


def bundle_resources(pg: str, index: int, bundle: Mapping[str, float]) -> dict[str, float]:
    """What a node offers once bundle ``index`` of group ``pg`` (hex id) is committed there."""
    offered = {f"{BUNDLE}_group_{index}_{pg}": BUNDLE_MARKER, f"{BUNDLE}_group_{pg}": BUNDLE_MARKER}
    for name, qty in bundle.items():
        offered[f"{name}_group_{index}_{pg}"] = qty
        offered[f"{name}_group_{pg}"] = qty
    return offered


def group_shape(shape: Mapping[str, float], pg: str, index: int) -> dict[str, float]:
    """``shape`` asked of bundle ``index`` of group ``pg`` (any bundle when -1)."""
    translated: dict[str, float] = {}
    for name, qty in shape.items():
        if qty:
            translated[f"{name}_group_{pg}"] = qty
            if index >= 0:
                translated[f"{name}_group_{index}_{pg}"] = qty
    translated[f"{BUNDLE}_group_{pg}"] = MARKER_REQUEST
    if index >= 0:
        translated[f"{BUNDLE}_group_{index}_{pg}"] = MARKER_REQUEST
    return translated


def is_group_resource(name: str) -> bool:
    return "_group_" in name


def of_group(name: str, pg: str) -> bool:
    """Whether resource ``name`` is one that group ``pg`` (hex id) offers."""
    return is_group_resource(name) and name.endswith(f"_{pg}")


def gpus_of(shape: Mapping[str, float]) -> float:
    """The GPUs a shape asks for, plain or from a placement group (each counted once)."""
    total = shape.get("GPU", 0.0)
    for name, qty in shape.items():
        if name.startswith("GPU_group_") and name.count("_") == 2:  # the group-wide name only
            total += qty
    return total


# ---- where bundles go -------------------------------------------------------------------


def place(
    bundles: Sequence[Mapping[str, float]],
    strategy: str,
    nodes: Mapping[bytes, Mapping[str, float]],
    fixed: Sequence[bytes | None] = (),
) -> list[bytes] | None:
    """A node id for every bundle, per ``strategy``, from the nodes' free resources; None if
    they do not fit now. ``fixed`` holds bundles already placed (None: to place)."""
    placed: list[bytes | None] = list(fixed) or [None] * len(bundles)
    free = {node: dict(available) for node, available in nodes.items()}
    todo = [i for i, node in enumerate(placed) if node is None]
    if strategy == "STRICT_PACK":
        return _strict_pack(bundles, placed, todo, free)
    if strategy == "STRICT_SPREAD":
        return _strict_spread(bundles, placed, todo, free)
    order = sorted(todo, key=lambda i: -_size(bundles[i]))  # big bundles first
    if strategy == "PACK":
        whole = _strict_pack(bundles, placed, todo, {n: dict(a) for n, a in free.items()})
        if whole is not None:
            return whole
    greedy = list(placed)
    left = {n: dict(a) for n, a in free.items()}
    for i in order:
        used = [node for node in greedy if node is not None]
        fitting = [node for node in left if _fits(bundles[i], left[node])]
        if not fitting:
            return _search(bundles, placed, order, free)  # greedy got stuck: look further
        if strategy == "PACK":  # where the group already is, else the fullest node it fits
            node = max(fitting, key=lambda n: (used.count(n), -_size(left[n])))
        else:  # SPREAD: where the group is least, then the emptiest
            node = min(fitting, key=lambda n: (used.count(n), -_size(left[n])))
        _take(left[node], bundles[i])
        greedy[i] = node
    return greedy  # type: ignore[return-value]


def _search(bundles, placed, order, free, budget: int = 20_000) -> list[bytes] | None:  # type: ignore[no-untyped-def]
    """Any placement that fits (backtracking, within ``budget`` steps); None if none is found."""
    result = list(placed)
    steps = 0

    def assign(k: int) -> bool:
        nonlocal steps
        if k == len(order):
            return True
        i = order[k]
        for node in free:
            steps += 1
            if steps > budget:
                return False
            if _fits(bundles[i], free[node]):
                _take(free[node], bundles[i])
                result[i] = node
                if assign(k + 1):
                    return True
                _give(free[node], bundles[i])
                result[i] = None
        return False

    return result if assign(0) else None  # type: ignore[return-value]


def _strict_pack(bundles, placed, todo, free) -> list[bytes] | None:  # type: ignore[no-untyped-def]
    anchors = {node for node in placed if node is not None}
    candidates = list(anchors) if anchors else list(free)
    if len(anchors) > 1:
        return None
    need: dict[str, float] = {}
    for i in todo:
        for name, qty in bundles[i].items():
            need[name] = need.get(name, 0.0) + qty
    fitting = [node for node in candidates if node in free and _fits(need, free[node])]
    if not fitting:
        return None
    node = min(fitting, key=lambda n: _size(free[n]))  # the tightest fit keeps big nodes free
    return [node if p is None else p for p in placed]


def _strict_spread(bundles, placed, todo, free) -> list[bytes] | None:  # type: ignore[no-untyped-def]
    taken = {node for node in placed if node is not None}
    order = sorted(todo, key=lambda i: -_size(bundles[i]))
    result = list(placed)

    def assign(k: int) -> bool:  # backtracking: a matching of bundles to distinct nodes
        if k == len(order):
            return True
        i = order[k]
        for node in sorted(free, key=lambda n: -_size(free[n])):
            if node not in taken and _fits(bundles[i], free[node]):
                taken.add(node)
                result[i] = node
                if assign(k + 1):
                    return True
                taken.discard(node)
                result[i] = None
        return False

    return result if assign(0) else None  # type: ignore[return-value]


def _fits(shape: Mapping[str, float], available: Mapping[str, float]) -> bool:
    return all(round(available.get(n, 0.0) * _QUANTUM) >= round(q * _QUANTUM) for n, q in shape.items())


def _take(available: dict[str, float], shape: Mapping[str, float]) -> None:
    for name, qty in shape.items():
        available[name] = (round(available.get(name, 0.0) * _QUANTUM) - round(qty * _QUANTUM)) / _QUANTUM


def _give(available: dict[str, float], shape: Mapping[str, float]) -> None:
    for name, qty in shape.items():
        available[name] = (round(available.get(name, 0.0) * _QUANTUM) + round(qty * _QUANTUM)) / _QUANTUM


def _size(shape: Mapping[str, float]) -> float:
    """A rough size for ordering: CPUs and GPUs count, memory in GiB."""
    return sum(qty / 2**30 if name in ("memory", "object_store_memory") else qty for name, qty in shape.items())


def caller_group(runtime: Any) -> tuple[bytes, bool]:
    """(placement group, captures child tasks) of the task or actor running here; (b"", False) in a driver."""
    executor = runtime.executor
    task = executor.current if executor is not None else None
    if task is not None:
        return task.placement_group, task.capture_child_tasks
    return runtime.identity.placement_group, runtime.identity.capture_child_tasks  # an actor's, or none

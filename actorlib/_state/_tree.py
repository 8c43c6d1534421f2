"""Supervision trees for inspection: from a supervisor's snapshot, bounded, sorted, cut (pure)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgspec

import supervisors

from ._schema import ExitInfo, Intensity, ProcessNode

MAX_CHILDREN = 100  # a pool with more children keeps only the busiest ones
KEEP_WHEN_ELIDED = 20
SORT_KEYS = ("cpu", "mem", "restarts", "uptime", "id")


def from_snapshot(
    info: supervisors.ChildInfo,
    now: float,
    annotate: Callable[[str], dict[str, Any]] = lambda path: {},
    stats: dict[int, tuple[float | None, int | None]] = {},
) -> ProcessNode:
    """A ProcessNode tree from ``Supervisor.snapshot()``; ``now`` is the supervisor's clock.

    ``annotate(path)`` adds what the caller knows of a child (actor class, job, ...);
    ``stats[pid]`` gives (CPU %, RSS) of each process.
    """
    cpu, rss = stats.get(info.pid, (None, None)) if info.pid else (None, None)
    intensity = None
    if info.intensity is not None:
        within = None if math.isinf(info.intensity.within) else info.intensity.within
        intensity = Intensity(
            restarts=info.intensity.restarts, max_restarts=info.intensity.max_restarts, within=within
        )
    node = ProcessNode(
        id=info.id, path=info.path, kind=info.kind, state=info.state, restart=info.restart, pid=info.pid,
        restarts=info.restarts, uptime=info.uptime, restart_eta=info.restart_eta,
        last_exit=_exit(info.last_exit, now), significant=info.significant, strategy=info.strategy,
        intensity=intensity, cpu_percent=cpu, rss=rss,
        children=[from_snapshot(child, now, annotate, stats) for child in info.children],
    )  # fmt: skip
    extra = annotate(info.path)
    return msgspec.structs.replace(node, **extra) if extra else node


def _exit(exit: supervisors.Exit | None, now: float) -> ExitInfo | None:
    if exit is None:
        return None
    return ExitInfo(
        kind=exit.kind.value, reason=exit.reason, code=exit.code, signal=exit.signal, error_type=exit.error_type,
        ago=round(max(0.0, now - exit.at), 3) if exit.at else None, traceback=exit.traceback,
    )  # fmt: skip


def sort_key(key: str) -> Callable[[ProcessNode], Any]:
    """Busiest first for cpu, mem and restarts; longest-running first for uptime."""
    if key == "cpu":
        return lambda n: -(total_cpu(n))
    if key == "mem":
        return lambda n: -(total_rss(n))
    if key == "restarts":
        return lambda n: -n.restarts
    if key == "uptime":
        return lambda n: -(n.uptime or 0.0)
    if key == "id":
        return lambda n: n.id
    raise ValueError(f"unknown sort key {key!r}; expected one of {', '.join(SORT_KEYS)}")


def total_cpu(node: ProcessNode) -> float:
    return (node.cpu_percent or 0.0) + sum(total_cpu(c) for c in node.children)


def total_rss(node: ProcessNode) -> int:
    return (node.rss or 0) + sum(total_rss(c) for c in node.children)


def bound(node: ProcessNode, max_children: int = MAX_CHILDREN, keep: int = KEEP_WHEN_ELIDED) -> ProcessNode:
    """Keep at most ``max_children`` per supervisor: past that, the ``keep`` busiest (CPU,
    then memory, then restarts) and a count of the rest in ``elided``."""
    children = [bound(child, max_children, keep) for child in node.children]
    elided = node.elided
    if len(children) > max_children:
        ranked = sorted(children, key=lambda n: (-total_cpu(n), -total_rss(n), -n.restarts))
        elided += len(children) - keep
        children = ranked[:keep]
    return msgspec.structs.replace(node, children=children, elided=elided)


def sort(node: ProcessNode, key: str) -> ProcessNode:
    """Order every supervisor's children by ``key`` (see ``sort_key``)."""
    order = sort_key(key)
    children = sorted((sort(child, key) for child in node.children), key=order)
    return msgspec.structs.replace(node, children=children)


def cut(node: ProcessNode, depth: int) -> ProcessNode:
    """The tree down to ``depth`` levels below ``node`` (0: the node alone); cut children are counted in ``elided``."""
    if depth <= 0:
        return msgspec.structs.replace(node, children=[], elided=node.elided + count(node) - 1)
    return msgspec.structs.replace(node, children=[cut(child, depth - 1) for child in node.children])


def count(node: ProcessNode) -> int:
    """Nodes in the tree (itself included), elided ones included."""
    return 1 + node.elided + sum(count(child) for child in node.children)


def walk(node: ProcessNode) -> list[ProcessNode]:
    """Every node of the tree, depth first."""
    out = [node]
    for child in node.children:
        out += walk(child)
    return out


def unhealthy(node: ProcessNode) -> ProcessNode | None:
    """Only the subtrees with trouble in them: children not running, restarted, or whose last
    exit was abnormal, with the supervisors above them; None if all is well."""
    children = [kept for child in node.children if (kept := unhealthy(child)) is not None]
    troubled = (
        node.state not in ("running",) or node.restarts > 0
        or (node.last_exit is not None and node.last_exit.kind == "abnormal")
        or (node.intensity is not None and node.intensity.restarts > 0)
    )  # fmt: skip
    if not troubled and not children:
        return None
    return msgspec.structs.replace(node, children=children, elided=0)

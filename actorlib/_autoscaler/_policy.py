"""The scaling policy (pure): from what waits, what runs and what idles, which nodes to launch,
drain and stop. The clock is an input (ages in seconds), so tests drive it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from .._node import _resources as res

Shape = Mapping[str, float]
UNBOUNDED = 2.0**60  # the memory of a node type that does not say (resource arithmetic needs finite numbers)


@dataclass(frozen=True)
class NodeType:
    """A kind of worker node the autoscaler may launch."""

    name: str
    resources: dict[str, float]  # what one node offers (memory missing: as much as asked)
    min_workers: int = 0
    max_workers: int = 0


@dataclass(frozen=True)
class Node:
    """A live node as the head sees it. ``node_type`` is "" for nodes the autoscaler did not launch."""

    node_id: bytes
    node_type: str
    total: dict[str, float]
    available: dict[str, float]
    busy: int = 0  # leases, actors and stored objects on it
    idle_s: float = 0.0  # how long it has been idle (0: in use now)
    draining: bool = False  # the autoscaler asked it to drain
    drained: bool = False  # it confirmed: it takes no new work
    draining_s: float = 0.0  # how long ago the drain was asked for


@dataclass(frozen=True)
class Demand:
    """Work that waits for resources: one shape, or bundles that must land on distinct nodes."""

    shapes: tuple[dict[str, float], ...]
    strict_spread: bool = False

    @classmethod
    def of(cls, shape: Shape) -> Demand:
        return cls((dict(shape),))


@dataclass(frozen=True)
class Inputs:
    demands: list[Demand]
    nodes: list[Node]
    requested: list[dict[str, float]] = field(default_factory=list)  # request_resources() bundles
    launching: dict[str, int] = field(default_factory=dict)  # in flight, per type (count and will offer)
    terminating: dict[str, int] = field(default_factory=dict)  # being stopped, per type (count only)
    backing_off: frozenset[str] = frozenset()  # types whose last launch failed, not retried yet
    since_scale_up: float = math.inf  # seconds since the last launch decision


@dataclass(frozen=True)
class Limits:
    types: dict[str, NodeType]
    max_workers: int
    idle_timeout_s: float
    cooldown_s: float = 0.0
    drain_timeout_s: float = math.inf


@dataclass(frozen=True)
class Decision:
    launch: dict[str, int] = field(default_factory=dict)
    drain: list[bytes] = field(default_factory=list)  # idle nodes to drain (then stop)
    undrain: list[bytes] = field(default_factory=list)  # drains to call off
    terminate: list[bytes] = field(default_factory=list)  # drained, idle: stop them now
    infeasible: list[dict[str, float]] = field(default_factory=list)  # no node type can hold these
    unmet: list[dict[str, float]] = field(default_factory=list)  # could fit a type, but bounds or backoff forbid


def plan(inputs: Inputs, limits: Limits) -> Decision:
    """What to do now. Never exceeds a type's or the cluster's ``max_workers``; never stops a
    node that is busy or not yet drained; never drains while it launches or during cool-down."""
    packer = _Packer(inputs, limits)
    packer.pack_requested(inputs.requested)
    packer.pack_demands(inputs.demands)
    packer.fill_minimums()
    drain, undrain, terminate = _scale_down(inputs, limits, packer)
    return Decision(
        launch={t: n for t, n in packer.launch.items() if n},
        drain=drain,
        undrain=undrain,
        terminate=terminate,
        infeasible=packer.infeasible,
        unmet=packer.unmet,
    )


class _Bin:
    __slots__ = ("free", "node_id", "node_type", "new")

    def __init__(self, free: dict[str, float], node_id: bytes | None, node_type: str, new: bool) -> None:
        self.free = dict(free)
        self.node_id = node_id
        self.node_type = node_type
        self.new = new


class _Packer:
    """First-fit packing of demands into free capacity, then into nodes it decides to launch."""

    def __init__(self, inputs: Inputs, limits: Limits) -> None:
        self.limits = limits
        self.inputs = inputs
        self.launch: dict[str, int] = {}
        self.infeasible: list[dict[str, float]] = []
        self.unmet: list[dict[str, float]] = []
        self.used_nodes: set[bytes] = set()  # nodes some demand or request was packed onto
        self.undrain: set[bytes] = set()
        live = [n for n in inputs.nodes if not n.draining]
        self.bins = [_Bin(n.available, n.node_id, n.node_type, False) for n in live]
        for name, count in inputs.launching.items():
            if name in limits.types:
                self.bins += [_Bin(self._offer(name), None, name, True) for _ in range(count)]
        self.draining = [n for n in inputs.nodes if n.draining]
        # request_resources() packs onto whole nodes: a floor on capacity, not on free room
        self.total_bins = [_Bin(n.total, n.node_id, n.node_type, False) for n in live]
        self.total_bins += [b for b in self.bins if b.new]

    def _offer(self, name: str) -> dict[str, float]:
        offer = dict(self.limits.types[name].resources)
        offer.setdefault(res.MEMORY, UNBOUNDED)
        return offer

    # ---- counting ------------------------------------------------------------------------

    def _count(self, name: str | None = None) -> int:
        """Worker nodes (live, draining, in flight, stopping, decided) of a type, or of all types."""
        inputs = self.inputs
        types = [name] if name is not None else list(self.limits.types)
        live = sum(1 for n in inputs.nodes if n.node_type in types)
        others = sum(inputs.launching.get(t, 0) + inputs.terminating.get(t, 0) + self.launch.get(t, 0) for t in types)
        return live + others

    def _may_launch(self, name: str) -> bool:
        node_type = self.limits.types[name]
        return (
            name not in self.inputs.backing_off
            and self._count(name) < node_type.max_workers
            and self._count() < self.limits.max_workers
        )

    def _types_for(self, shape: Shape) -> list[str]:
        """Types a node of which could hold ``shape``; those without extra special resources first."""
        fitting = [name for name in self.limits.types if res.fits(shape, self._offer(name))]
        plain = (res.CPU, res.MEMORY)

        def extras(name: str) -> int:
            offered = self.limits.types[name].resources
            return sum(1 for r, q in offered.items() if q and r not in plain and r not in shape)

        return sorted(fitting, key=extras)  # stable: config order among equals

    # ---- packing ---------------------------------------------------------------------------

    def pack_requested(self, bundles: list[dict[str, float]]) -> None:
        for shape in _largest_first(bundles):
            placed = _first_fit(self.total_bins, shape, exclude=set())
            if placed is None:
                placed = self._new_bin(shape, self.total_bins)
            if placed is not None and placed.node_id is not None:
                self.used_nodes.add(placed.node_id)

    def pack_demands(self, demands: list[Demand]) -> None:
        order = sorted(demands, key=lambda d: _size(_sum(d.shapes)), reverse=True)
        for demand in order:
            taken: set[int] = set()
            for shape in _largest_first(list(demand.shapes)):
                exclude = taken if demand.strict_spread else set()
                placed = _first_fit(self.bins, shape, exclude) or self._from_draining(shape)
                if placed is None:
                    placed = self._new_bin(shape, self.bins)
                if placed is None:
                    continue
                taken.add(id(placed))
                if placed.node_id is not None:
                    self.used_nodes.add(placed.node_id)

    def _from_draining(self, shape: Shape) -> _Bin | None:
        """A draining node that could take this after all: call its drain off rather than launch."""
        for node in self.draining:
            if node.node_id not in self.undrain and res.fits(shape, node.available):
                self.undrain.add(node.node_id)
                added = _Bin(node.available, node.node_id, node.node_type, False)
                self.bins.append(added)
                res.subtract(added.free, shape)
                return added
        return None

    def _new_bin(self, shape: Shape, bins: list[_Bin]) -> _Bin | None:
        candidates = self._types_for(shape)
        if not candidates:
            self.infeasible.append(dict(shape))
            return None
        for name in candidates:
            if self._may_launch(name):
                self.launch[name] = self.launch.get(name, 0) + 1
                added = _Bin(self._offer(name), None, name, True)
                res.subtract(added.free, shape)
                bins.append(added)
                if bins is self.total_bins:  # launched for request_resources(): all of it is free room
                    self.bins.append(_Bin(self._offer(name), None, name, True))
                return added
        self.unmet.append(dict(shape))
        return None

    def fill_minimums(self) -> None:
        for name, node_type in self.limits.types.items():
            while self.staying(name) < node_type.min_workers and self._may_launch(name):
                self.launch[name] = self.launch.get(name, 0) + 1

    def staying(self, name: str) -> int:
        """Nodes of a type that will be there: live and not leaving, in flight, or decided now."""
        live = sum(
            1 for n in self.inputs.nodes if n.node_type == name and (not n.draining or n.node_id in self.undrain)
        )
        return live + self.inputs.launching.get(name, 0) + self.launch.get(name, 0)


def _scale_down(inputs: Inputs, limits: Limits, packer: _Packer) -> tuple[list[bytes], list[bytes], list[bytes]]:
    undrain = sorted(packer.undrain)
    terminate: list[bytes] = []
    for node in inputs.nodes:
        if not node.draining or node.node_id in packer.undrain:
            continue
        if node.drained and node.busy == 0:
            terminate.append(node.node_id)
        elif node.draining_s >= limits.drain_timeout_s:
            undrain.append(node.node_id)  # work came in before the drain took hold: let it finish there
    drain: list[bytes] = []
    if packer.launch or packer.unmet or inputs.since_scale_up < limits.cooldown_s:
        return drain, undrain, terminate
    kept = {name: packer.staying(name) for name in limits.types}
    idle = [n for n in inputs.nodes if _may_drain(n, limits, packer)]
    for node in sorted(idle, key=lambda n: -n.idle_s):
        if kept[node.node_type] > limits.types[node.node_type].min_workers:
            kept[node.node_type] -= 1
            drain.append(node.node_id)
    return drain, undrain, terminate


def _may_drain(node: Node, limits: Limits, packer: _Packer) -> bool:
    return (
        node.node_type in limits.types
        and not node.draining
        and node.busy == 0
        and node.idle_s >= limits.idle_timeout_s
        and node.node_id not in packer.used_nodes
    )


def _first_fit(bins: list[_Bin], shape: Shape, exclude: set[int]) -> _Bin | None:
    for candidate in bins:
        if id(candidate) not in exclude and res.fits(shape, candidate.free):
            res.subtract(candidate.free, shape)
            return candidate
    return None


def _largest_first(shapes: list[dict[str, float]]) -> list[dict[str, float]]:
    return sorted(shapes, key=_size, reverse=True)


def _size(shape: Shape) -> tuple[float, float, float]:
    """Scarce resources first: GPUs, then custom resources, then CPUs."""
    custom = sum(q for r, q in shape.items() if r not in (res.CPU, res.GPU, res.MEMORY))
    return (shape.get(res.GPU, 0.0), custom, shape.get(res.CPU, 0.0))


def _sum(shapes: tuple[dict[str, float], ...]) -> dict[str, float]:
    total: dict[str, float] = {}
    for shape in shapes:
        res.add(total, shape)
    return total

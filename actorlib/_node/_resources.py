"""Resource shapes and ledgers as plain dicts, with pure arithmetic.

A shape maps resource names to quantities (``{"CPU": 1.0, "GPU": 0.5}``).
Quantities are kept in units of 1/10000 to avoid float drift.
"""

from __future__ import annotations

from collections.abc import Mapping

CPU, GPU, MEMORY = "CPU", "GPU", "memory"
_QUANTUM = 10_000

Shape = Mapping[str, float]


def _q(value: float) -> int:
    return round(value * _QUANTUM)


def normalize(shape: Shape) -> dict[str, float]:
    """Drop zero entries and round to the resource quantum."""
    return {name: _q(qty) / _QUANTUM for name, qty in shape.items() if _q(qty) != 0}


def fits(shape: Shape, available: Shape) -> bool:
    """Whether ``shape`` fits in ``available`` right now."""
    return all(_q(available.get(name, 0.0)) >= _q(qty) for name, qty in shape.items())


def subtract(available: dict[str, float], shape: Shape) -> None:
    for name, qty in shape.items():
        available[name] = (_q(available.get(name, 0.0)) - _q(qty)) / _QUANTUM


def add(available: dict[str, float], shape: Shape) -> None:
    for name, qty in shape.items():
        available[name] = (_q(available.get(name, 0.0)) + _q(qty)) / _QUANTUM


def only(shape: Shape, names: tuple[str, ...]) -> dict[str, float]:
    """The part of ``shape`` made of ``names``."""
    return {name: qty for name, qty in shape.items() if name in names}


def infeasible_reason(shape: Shape, total: Shape) -> str | None:
    """Why ``shape`` can never fit a node of capacity ``total``, or None if it can."""
    missing = [
        f"{name}={qty:g} (this node has {total.get(name, 0.0):g})"
        for name, qty in shape.items()
        if _q(total.get(name, 0.0)) < _q(qty)
    ]
    if not missing:
        return None
    return "requests " + ", ".join(missing)


def describe(resources: Shape) -> str:
    """``CPU=2, GPU=0, memory=1.5 GiB`` for messages."""
    parts = []
    for name in sorted(resources):
        qty = resources[name]
        if name in (MEMORY, "object_store_memory"):
            parts.append(f"{name}={qty / 2**30:.1f} GiB")
        else:
            parts.append(f"{name}={qty:g}")
    return ", ".join(parts)

"""How many inputs each fuzz and security suite tried, by target and kind; printed at the end of the run."""

from __future__ import annotations

from collections import Counter, defaultdict

TRIED: defaultdict[str, Counter[str]] = defaultdict(Counter)
FIGURES: dict[str, str] = {}  # measured along the way (how soon what was killed was gone)


def count(target: str, kind: str, n: int = 1) -> None:
    """Record ``n`` inputs of ``kind`` sent to ``target``."""
    TRIED[target][kind] += n


def summary() -> list[str]:
    """One line per target: the total, then the count of each kind."""
    lines = []
    for target in sorted(TRIED):
        kinds = TRIED[target]
        detail = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
        lines.append(f"{target}: {sum(kinds.values())} ({detail})")
    return lines


def figure(name: str, value: str) -> None:
    """Record one measured figure, printed with the counts."""
    FIGURES[name] = value

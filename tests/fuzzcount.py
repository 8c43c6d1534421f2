"""How many inputs each fuzz suite tried, by target and kind; printed at the end of the run."""

from __future__ import annotations

from collections import Counter, defaultdict

TRIED: defaultdict[str, Counter[str]] = defaultdict(Counter)


def count(target: str, kind: str) -> None:
    """Record one input of ``kind`` sent to ``target``."""
    TRIED[target][kind] += 1


def summary() -> list[str]:
    """One line per target: the total, then the count of each kind."""
    lines = []
    for target in sorted(TRIED):
        kinds = TRIED[target]
        detail = ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items()))
        lines.append(f"{target}: {sum(kinds.values())} ({detail})")
    return lines

"""The ledger of the chaos and load suites: what each scenario injected and what survived.

``pytest tests/actorlib/chaos tests/actorlib/load --reliability-report PATH`` writes it as
the Markdown table docs/reliability.md shows (the ``ledger`` fixture, tests/actorlib/conftest.py).
"""

from __future__ import annotations

import platform
import subprocess
import time
from dataclasses import dataclass, field


@dataclass
class Row:
    scenario: str
    faults: str
    work: str
    lost: int
    leftover: int = -1
    recovery: str = ""
    seconds: float = 0.0
    notes: str = ""


@dataclass
class Ledger:
    rows: list[Row] = field(default_factory=list)

    def markdown(self) -> str:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        lines = [
            f"Measured at commit `{commit or '?'}` on {platform.node()} ({platform.machine()}, "
            f"Python {platform.python_version()}), {time.strftime('%Y-%m-%d')}.",
            "",
            "| scenario | faults injected | work items | lost | leftover processes | recovery | wall time |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for r in self.rows:
            lines.append(
                f"| {r.scenario} | {r.faults} | {r.work} | {r.lost} | {r.leftover} | {r.recovery} | {r.seconds:.1f} s |"
            )
        notes = [f"- **{r.scenario}**: {r.notes}" for r in self.rows if r.notes]
        return "\n".join(lines + ([""] + notes if notes else [])) + "\n"

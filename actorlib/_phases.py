"""Start-up phases, for ``python -m benchmarks.cold_start``: with ``$ACTORLIB_PHASES_FILE``
set, each process appends ``<unix time> <pid> <phase>`` when it reaches a phase (the
variable is inherited by the head and its workers). Otherwise a mark costs one lookup."""

from __future__ import annotations

import os
import time

PHASES_ENV = "ACTORLIB_PHASES_FILE"
_path = os.environ.get(PHASES_ENV)


def mark(phase: str) -> None:
    if _path:
        with open(_path, "a") as out:
            out.write(f"{time.time():.6f} {os.getpid()} {phase}\n")

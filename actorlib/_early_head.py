"""Starting a local cluster's head process before the driver imports its runtime, so that
the head's start-up and the driver's imports overlap (standard library only).

The head builds its node's config from the same ``init()`` arguments
(``python -m actorlib._head --local SESSION OPTIONS``); the driver checks
them too, and kills the early head if they are bad or ``init()`` fails
before its supervisor has adopted the process.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import supervisors

from ._environ import with_own_code
from ._session import new_session

# The init() arguments the head needs to describe its node.
NODE_OPTIONS = (
    "num_cpus", "num_gpus", "resources", "memory", "object_store_memory", "include_dashboard", "dashboard_port",
    "dashboard_host", "object_spilling_directory", "object_spilling_limit", "_system_config",
)  # fmt: skip


class EarlyHead:
    """A head process started by :func:`start`, and the session it serves."""

    def __init__(self, session: Path, spawned: supervisors.Spawned) -> None:
        self.session = session
        self.spawned = spawned

    def abandon(self) -> None:
        """Kill it and remove its session, unless a supervisor adopted it (idempotent)."""
        if not self.spawned.adopted:
            self.spawned.kill()
            shutil.rmtree(self.session, ignore_errors=True)


def start(options: dict[str, Any]) -> EarlyHead | None:
    """Start the head of a new local cluster for ``init(**options)``, or None when it should
    not start early: called off the main thread (the head's parent-death signal follows the
    thread that started it), or with arguments JSON cannot carry (init() judges them)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        encoded = json.dumps({name: options[name] for name in NODE_OPTIONS if name in options})
    except (TypeError, ValueError):
        return None
    session = new_session()
    logs = session / "logs"
    argv = [sys.executable, "-m", "actorlib._head", "--local", str(session), encoded]
    try:
        spawned = supervisors.spawn(argv, env=with_own_code(dict(os.environ)), stdout=logs / "head.out", stderr=logs / "head.err")
    except BaseException:
        shutil.rmtree(session, ignore_errors=True)
        raise
    return EarlyHead(session, spawned)

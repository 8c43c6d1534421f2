"""Tasks as a Chrome trace (the JSON Perfetto and chrome://tracing open): one row per worker (pure)."""

from __future__ import annotations

import time
from typing import Any

from ._schema import TaskState


def chrome_trace(tasks: list[TaskState], now: float | None = None) -> list[dict[str, Any]]:
    """Complete events ("X"): a process per node, a thread per worker pid; running tasks end at ``now``."""
    now = time.time() if now is None else now
    events: list[dict[str, Any]] = []
    nodes: dict[str, int] = {}
    threads: set[tuple[int, int]] = set()
    for task in sorted(tasks, key=lambda t: t.start_time):
        pid = nodes.setdefault(task.node_id, len(nodes) + 1)
        if (pid, task.worker_pid) not in threads:
            threads.add((pid, task.worker_pid))
            events.append(_meta("thread_name", pid, task.worker_pid, f"worker {task.worker_pid}"))
        end = task.end_time if task.end_time is not None else now
        events.append(
            {
                "name": task.name,
                "cat": task.type.lower(),
                "ph": "X",
                "ts": round(task.start_time * 1e6, 1),
                "dur": round(max(0.0, end - task.start_time) * 1e6, 1),
                "pid": pid,
                "tid": task.worker_pid,
                "args": {
                    "task_id": task.task_id, "state": task.state, "job_id": task.job_id,
                    "actor_id": task.actor_id, "attempt": task.attempt, "error": task.error_message,
                },  # fmt: skip
            }
        )
    meta = [_meta("process_name", pid, 0, f"node {node_id[:12]}") for node_id, pid in nodes.items()]
    return meta + events


def _meta(name: str, pid: int, tid: int, label: str) -> dict[str, Any]:
    return {"name": name, "ph": "M", "pid": pid, "tid": tid, "args": {"name": label}}

"""A job's log file on the node that runs it: its name, the supervisor's own lines, its tail.

Readers elsewhere read it through the node's service (ReadLog), like every log file of the node.
"""

from __future__ import annotations

import datetime
from pathlib import Path

def log_path(logs_dir: Path, submission_id: str) -> Path:
    return logs_dir / f"job-driver-{submission_id}.log"


def write_line(path: Path, text: str, *, fresh: bool = False) -> None:
    """Append one supervisor line (``<timestamp>\\tINFO ... -- text``), as Ray's job manager does.

    ``fresh``: start the file anew (a new job, maybe with the id of a deleted one).
    """
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    with open(path, "w" if fresh else "a", encoding="utf-8") as log:
        log.write(f"{stamp}\tINFO actorlib.jobs -- {text}\n")


def read_tail(path: Path, chars: int) -> str:
    """The last ``chars`` characters of the log (about: read as bytes, decoded leniently)."""
    try:
        with open(path, "rb") as log:
            size = log.seek(0, 2)
            log.seek(max(0, size - chars))
            return log.read().decode("utf-8", errors="replace")[-chars:]
    except FileNotFoundError:
        return ""


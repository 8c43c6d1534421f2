"""A job's log file: the supervisor's own lines, reading all or the tail, following it as it grows."""

from __future__ import annotations

import codecs
import datetime
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import trio

FOLLOW_POLL = 0.1  # seconds between looks at a growing log file
READ_CHUNK = 1 << 16


def log_path(logs_dir: Path, submission_id: str) -> Path:
    return logs_dir / f"job-driver-{submission_id}.log"


def write_line(path: Path, text: str) -> None:
    """Append one supervisor line (``<timestamp>\\tINFO ... -- text``), as Ray's job manager does."""
    stamp = datetime.datetime.now().strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]
    with open(path, "a", encoding="utf-8") as log:
        log.write(f"{stamp}\tINFO actorlib.jobs -- {text}\n")


def read_all(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def read_tail(path: Path, chars: int) -> str:
    """The last ``chars`` characters of the log (about: read as bytes, decoded leniently)."""
    try:
        with open(path, "rb") as log:
            size = log.seek(0, 2)
            log.seek(max(0, size - chars))
            return log.read().decode("utf-8", errors="replace")[-chars:]
    except FileNotFoundError:
        return ""


async def follow(path: Path, finished: Callable[[], bool], wake: Callable[[], trio.Event]) -> AsyncIterator[str]:
    """Yield the log's text as it grows, from the start, until ``finished()`` and all is read.

    ``wake()`` gives an event set when the job ends (so the last lines come at once).
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    offset = 0
    while True:
        done = finished()  # before reading: what was written before the end is then read
        chunk = await trio.to_thread.run_sync(_read_from, path, offset)
        offset += len(chunk)
        text = decoder.decode(chunk, final=done and not chunk)
        if text:
            yield text
        if chunk:
            continue
        if done:
            return
        with trio.move_on_after(FOLLOW_POLL):
            await wake().wait()


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as log:
            log.seek(offset)
            return log.read(READ_CHUNK)
    except FileNotFoundError:
        return b""

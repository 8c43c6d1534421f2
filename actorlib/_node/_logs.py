"""Worker output: written to the session's log files and relayed to the drivers of its job.

A worker announces which job and task its following output belongs to with
marker lines (``\\x1factorlib:job=...;name=...``); they are stripped here.

Neither a slow disk nor a slow driver blocks the node or grows its memory:
file writes run on a worker thread, one chunk at a time per stream (a worker
that writes faster than the disk takes it waits on its full pipe), and lines
for a driver whose channel already has LOG_BUDGET bytes unsent are dropped
and counted; the driver gets one line saying how many once it reads again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import trio

from .._wire import Channel, LogBatch, LogLine
from .._wire._receive import receive_some

log = logging.getLogger("actorlib.node")

MARKER = b"\x1factorlib:"
MAX_LINE = 64 * 1024
LOG_BUDGET = 1 << 20  # bytes queued on a driver's channel beyond which its log lines are dropped


class _Stream:
    """One output stream of one worker."""

    def __init__(self, pid: int, stream: str, path: Path) -> None:
        self.pid = pid
        self.stream = stream
        self.path = path
        self.file: trio.abc.AsyncResource | None = None  # opened at its first line: most workers write none
        self.partial = b""
        self.job = ""
        self.name = ""


class LogRelay:
    """Pumps worker pipes into files and subscribers."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._subscribers: dict[str, set[Channel]] = {}
        self._dropped: dict[Channel, int] = {}  # lines a subscriber missed, not yet told

    def subscribe(self, job_id: str, channel: Channel) -> None:
        self._subscribers.setdefault(job_id, set()).add(channel)

    def unsubscribe(self, channel: Channel) -> None:
        for job, channels in list(self._subscribers.items()):
            channels.discard(channel)
            if not channels:
                del self._subscribers[job]
        self._dropped.pop(channel, None)

    async def pump(self, name: str, pid: int, stream_name: str, stream: trio.abc.ReceiveStream) -> None:
        """Copy one worker stream until EOF (the worker exited). Its file is made at the first
        line written: a thousand actors that print nothing open (and leave) no files."""
        out = _Stream(pid, stream_name, self.log_dir / f"{name}-{pid}.{stream_name}")
        try:
            async with stream:
                while data := await receive_some(stream, 65536):
                    await self._feed(out, data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            with trio.CancelScope(shield=True):
                if out.partial:
                    await self._feed(out, b"\n")
                if out.file is not None:
                    await out.file.aclose()

    async def _feed(self, out: _Stream, data: bytes) -> None:
        *lines, out.partial = (out.partial + data).split(b"\n")
        if len(out.partial) > MAX_LINE:
            lines.append(out.partial)
            out.partial = b""
        batches: dict[str, list[LogLine]] = {}
        written = []
        for line in lines:
            if line.startswith(MARKER):
                out.job, out.name = _parse_marker(line)
                continue
            written.append(line)
            text = line.decode(errors="replace")
            batches.setdefault(out.job, []).append(LogLine(pid=out.pid, name=out.name, stream=out.stream, text=text))
        for job, batch in batches.items():
            self._send(job, batch)
        if written:
            if out.file is None:
                out.file = await trio.open_file(out.path, "ab", buffering=0)
            await out.file.write(b"\n".join(written) + b"\n")  # type: ignore[attr-defined]

    def tell_dropped(self) -> None:
        """Send each subscriber that missed lines, and reads again, how many (called
        periodically: the next relayed line would carry it too, but it may never come)."""
        for channel, dropped in list(self._dropped.items()):
            if channel.closed:
                self.unsubscribe(channel)
            elif channel.queued <= LOG_BUDGET:
                del self._dropped[channel]
                self._deliver(channel, [_dropped_notice(dropped)])

    def _send(self, job: str, lines: list[LogLine]) -> None:
        for channel in list(self._subscribers.get(job, ())):
            if channel.closed:
                self.unsubscribe(channel)
                continue
            if channel.queued > LOG_BUDGET:  # it is not reading: drop, and say so later
                self._dropped[channel] = self._dropped.get(channel, 0) + len(lines)
                continue
            dropped = self._dropped.pop(channel, 0)
            self._deliver(channel, [_dropped_notice(dropped), *lines] if dropped else lines)

    def _deliver(self, channel: Channel, lines: list[LogLine]) -> None:
        try:
            channel.send_nowait(LogBatch(lines=lines))
        except trio.ClosedResourceError:
            self.unsubscribe(channel)


def _dropped_notice(count: int) -> LogLine:
    log.warning("dropped %d lines of worker output for a driver that did not read them", count)
    text = f"actorlib: {count} lines of worker output were dropped: this driver did not read them fast enough"
    return LogLine(pid=os.getpid(), name="actorlib", stream="err", text=text)


def _parse_marker(line: bytes) -> tuple[str, str]:
    fields = dict(part.split("=", 1) for part in line[len(MARKER) :].decode(errors="replace").split(";") if "=" in part)
    return fields.get("job", ""), fields.get("name", "")

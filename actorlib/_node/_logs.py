"""Worker output: written to the session's log files and relayed to the drivers of its job.

A worker announces which job and task its following output belongs to with
marker lines (``\\x1factorlib:job=...;name=...``); they are stripped here.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import trio

from .._wire import Channel, LogBatch, LogLine

MARKER = b"\x1factorlib:"
MAX_LINE = 64 * 1024


class _Stream:
    """One output stream of one worker."""

    def __init__(self, pid: int, stream: str, path: Path) -> None:
        self.pid = pid
        self.stream = stream
        self.file: BinaryIO = open(path, "ab", buffering=0)
        self.partial = b""
        self.job = ""
        self.name = ""


class LogRelay:
    """Pumps worker pipes into files and subscribers."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._subscribers: dict[str, set[Channel]] = {}

    def subscribe(self, job_id: str, channel: Channel) -> None:
        self._subscribers.setdefault(job_id, set()).add(channel)

    def unsubscribe(self, channel: Channel) -> None:
        for channels in self._subscribers.values():
            channels.discard(channel)

    async def pump(self, name: str, pid: int, stream_name: str, stream: trio.abc.ReceiveStream) -> None:
        """Copy one worker stream until EOF (the worker exited)."""
        out = _Stream(pid, stream_name, self.log_dir / f"{name}-{pid}.{stream_name}")
        try:
            async with stream:
                while data := await stream.receive_some(65536):
                    self._feed(out, data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass
        finally:
            if out.partial:
                self._feed(out, b"\n")
            out.file.close()

    def _feed(self, out: _Stream, data: bytes) -> None:
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
        if written:
            out.file.write(b"\n".join(written) + b"\n")
        for job, batch in batches.items():
            self._send(job, batch)

    def _send(self, job: str, lines: list[LogLine]) -> None:
        for channel in list(self._subscribers.get(job, ())):
            if channel.closed:
                self._subscribers[job].discard(channel)
                continue
            try:
                channel.send_nowait(LogBatch(lines=lines))
            except trio.ClosedResourceError:
                self._subscribers[job].discard(channel)


def _parse_marker(line: bytes) -> tuple[str, str]:
    fields = dict(part.split("=", 1) for part in line[len(MARKER) :].decode(errors="replace").split(";") if "=" in part)
    return fields.get("job", ""), fields.get("name", "")

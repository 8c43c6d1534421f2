"""The control channel between a supervisor and a process child: one JSON line per message."""

from __future__ import annotations

import msgspec

from ._spawn import CONTROL_FD_ENV, PARENT_PID_ENV

__all__ = ["CONTROL_FD_ENV", "PARENT_PID_ENV"]  # and the messages below
MAX_LINE = 1 << 20


class _Message(msgspec.Struct, tag_field="msg"):
    pass


class Ready(_Message, tag="ready"):
    """Child to supervisor, once: the child has started and is serving (``info``: what it
    wants its supervisor to know, e.g. the addresses it listens on)."""

    info: dict[str, str] = {}


class Stop(_Message, tag="stop"):
    """Supervisor to child: please stop now, for this reason."""

    reason: str = ""


class Failure(_Message, tag="failure"):
    """Child to supervisor, just before an abnormal exit: what went wrong."""

    type: str
    message: str
    traceback: str


Message = Ready | Stop | Failure

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Message)


class ProtocolError(Exception):
    """A control line that is not a valid message."""


def encode(message: Message) -> bytes:
    """One message as a newline-terminated line."""
    return _encoder.encode(message) + b"\n"


def decode(line: bytes) -> Message:
    """Parse one line (without its newline); raise ProtocolError naming the problem."""
    try:
        return _decoder.decode(line)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"bad control message {line[:80]!r}: {exc}") from None


class LineBuffer:
    """Split a byte stream into lines, refusing lines longer than MAX_LINE."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        *lines, rest = self._buf.split(b"\n")
        if len(rest) > MAX_LINE:
            raise ProtocolError(f"control line longer than {MAX_LINE} bytes")
        self._buf = bytearray(rest)
        return [bytes(line) for line in lines]

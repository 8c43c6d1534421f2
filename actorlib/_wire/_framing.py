"""Length-prefixed frames (sans-I/O): a 4-byte big-endian length, then the payload."""

from __future__ import annotations

HEADER = 4
DEFAULT_MAX_FRAME = 256 * 1024 * 1024
# Before a peer has proved the token it may send one Auth (~100 bytes): a larger frame is
# refused at its header, so a stranger cannot make a server buffer a 256 MiB "frame".
HANDSHAKE_MAX_FRAME = 16 * 1024


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame or message; its connection is closed."""


class FrameReader:
    """Accumulates received bytes and returns the complete frames in them.

    ``max_frame`` may be changed between calls (servers lower it until the handshake is done).
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self._buf = bytearray()
        self.max_frame = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        """Add ``data``; return every frame now complete. Raises ProtocolError."""
        buf = self._buf
        buf += data
        frames = []
        start = 0
        end = len(buf)
        while end - start >= HEADER:
            size = int.from_bytes(buf[start : start + HEADER], "big")
            if size > self.max_frame:
                raise ProtocolError(f"frame of {size} bytes exceeds the {self.max_frame}-byte limit")
            if end - start - HEADER < size:
                break
            frames.append(bytes(buf[start + HEADER : start + HEADER + size]))
            start += HEADER + size
        if start:
            del buf[:start]
        return frames

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._buf)

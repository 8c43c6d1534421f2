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

    Each frame is copied once, at its size, out of what was fed (which may be a view
    of a buffer the caller reuses): no buffer grows and shrinks with what arrives, so
    a long-lived process's C heap is not fragmented by bursts (see _receive.py). A
    frame that spans several feeds is gathered in a bytearray of its size, allocated
    when its header is complete, and returned as that bytearray.

    ``max_frame`` may be changed between calls (servers lower it until the handshake is done).
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._header = bytearray()  # the first bytes of a header that has not all arrived
        self._frame: bytearray | None = None  # the frame being gathered, once its header has
        self._filled = 0

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes | bytearray]:
        """Add ``data``; return every frame now complete. Raises ProtocolError."""
        view = memoryview(data)
        frames: list[bytes | bytearray] = []
        if self._header or self._frame is not None:
            view = self._continue(view, frames)
        start, end = 0, len(view)
        while end - start >= HEADER:
            size = self._size(view[start : start + HEADER])
            if end - start - HEADER < size:
                break
            frames.append(bytes(view[start + HEADER : start + HEADER + size]))
            start += HEADER + size
        if start < end:
            self._continue(view[start:], frames)
        return frames

    def _size(self, header: bytes | bytearray | memoryview) -> int:
        size = int.from_bytes(header, "big")
        if size > self.max_frame:
            raise ProtocolError(f"frame of {size} bytes exceeds the {self.max_frame}-byte limit")
        return size

    def _continue(self, view: memoryview, frames: list[bytes | bytearray]) -> memoryview:
        """Carry on with the partial frame (or start one) from ``view``; what is left of it."""
        if self._frame is None:
            take = HEADER - len(self._header)
            self._header += view[:take]
            view = view[take:]
            if len(self._header) < HEADER:
                return view
            self._frame, self._filled = bytearray(self._size(self._header)), 0
            self._header = bytearray()
        frame = self._frame
        take = min(len(frame) - self._filled, len(view))
        frame[self._filled : self._filled + take] = view[:take]
        self._filled += take
        if self._filled == len(frame):
            frames.append(frame)
            self._frame = None
        return view[take:]

    @property
    def pending(self) -> int:
        """Bytes received but not yet part of a complete frame."""
        return len(self._header) if self._frame is None else HEADER + self._filled

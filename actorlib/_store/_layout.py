"""The byte layout of one stored object (sans-I/O): a fixed header, a buffer table,
the pickle stream, then each out-of-band buffer at a 64-byte-aligned offset.

::

    0       magic b"ALOB" | version u32 | pickle length u64 | buffer count u64   (24 bytes, little-endian)
    24      buffer table: count x (offset u64, length u64), offsets from the object's start
    24+16n  the pickle stream
    ...     buffer 0 at the next multiple of 64, buffer 1 at the next after it, ...

The object's size is the end of its last buffer (or of the pickle stream).
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Sequence
from typing import Any

from .._serial import Serialized, deserialize

MAGIC = b"ALOB"
VERSION = 1
ALIGNMENT = 64

_PREFIX = struct.Struct("<4sIQQ")  # magic, version, pickle length, buffer count
_ENTRY = struct.Struct("<QQ")  # one out-of-band buffer: offset, length

BufferLike = bytes | bytearray | memoryview | mmap.mmap


class ObjectFormatError(ValueError):
    """The memory does not hold an object in this layout (bad magic, version or bounds)."""


def _align(offset: int) -> int:
    return -(-offset // ALIGNMENT) * ALIGNMENT


def _plan(pickle_length: int, buffer_lengths: Sequence[int]) -> tuple[list[int], int]:
    """The buffers' offsets and the object's total size."""
    end = _PREFIX.size + _ENTRY.size * len(buffer_lengths) + pickle_length
    offsets = []
    for length in buffer_lengths:
        start = _align(end)
        offsets.append(start)
        end = start + length
    return offsets, end


def object_size(serialized: Serialized) -> int:
    """Bytes the object needs in the store: header, pickle, buffers and alignment padding."""
    return _plan(len(serialized.data), [b.raw().nbytes for b in serialized.buffers])[1]


def object_pieces(serialized: Serialized) -> list[bytes | memoryview]:
    """The object's bytes in order, without copying the buffers: their concatenation is the object.

    For writing with one gathering system call (``os.pwritev``); the
    padding pieces are zero bytes.
    """
    raws = [b.raw() for b in serialized.buffers]
    offsets, _ = _plan(len(serialized.data), [r.nbytes for r in raws])
    header = bytearray(_PREFIX.pack(MAGIC, VERSION, len(serialized.data), len(raws)))
    for offset, raw in zip(offsets, raws):
        header += _ENTRY.pack(offset, raw.nbytes)
    pieces: list[bytes | memoryview] = [bytes(header), serialized.data]
    end = len(header) + len(serialized.data)
    for offset, raw in zip(offsets, raws):
        if offset > end:
            pieces.append(bytes(offset - end))
        pieces.append(raw)
        end = offset + raw.nbytes
    return pieces


def write_object(buf: BufferLike, serialized: Serialized) -> None:
    """Lay ``serialized`` out at the start of the writable ``buf``.

    ``buf`` must hold at least ``object_size(serialized)`` bytes; bytes past
    that are left alone. Raises ValueError if it is too small or read-only.
    """
    pieces = object_pieces(serialized)
    size = sum(len(piece) for piece in pieces)  # every piece is bytes or a 1-D byte memoryview
    with memoryview(buf) as outer, outer.cast("B") as view:
        if view.readonly:
            raise ValueError("write_object needs a writable buffer")
        if len(view) < size:
            raise ValueError(f"buffer of {len(view)} bytes cannot hold an object of {size} bytes")
        offset = 0
        for piece in pieces:
            view[offset : offset + len(piece)] = piece
            offset += len(piece)


def read_object(buf: BufferLike) -> Any:
    """The value laid out in ``buf``; out-of-band buffers are *not* copied.

    Arrays and other buffer consumers in the value are backed by ``buf``
    itself (they keep it alive), read-only if ``buf`` is read-only.

    Raises:
        ObjectFormatError: ``buf`` does not hold an object in this layout.
        SerializationError: the value cannot be rebuilt in this process.
    """
    view = memoryview(buf).cast("B")
    pickle_length, entries = _parse_header(view)
    start = _PREFIX.size + _ENTRY.size * len(entries)
    data = view[start : start + pickle_length]
    buffers = [view[offset : offset + length] for offset, length in entries]
    return deserialize(data, buffers)


def _parse_header(view: memoryview) -> tuple[int, list[tuple[int, int]]]:
    """The pickle length and buffer table, checked against the size of ``view``."""
    size = len(view)
    if size < _PREFIX.size:
        raise ObjectFormatError(f"an object needs at least {_PREFIX.size} bytes, got {size}")
    magic, version, pickle_length, count = _PREFIX.unpack_from(view)
    if magic != MAGIC:
        raise ObjectFormatError(f"not a stored object: magic {bytes(magic)!r} is not {MAGIC!r}")
    if version != VERSION:
        raise ObjectFormatError(f"stored object layout version {version} is not the supported {VERSION}")
    pickle_end = _PREFIX.size + _ENTRY.size * count + pickle_length
    if pickle_end > size:
        raise ObjectFormatError(f"object header describes {pickle_end} bytes but only {size} are mapped")
    entries = [_ENTRY.unpack_from(view, _PREFIX.size + i * _ENTRY.size) for i in range(count)]
    for offset, length in entries:
        if offset < pickle_end or offset + length > size:
            raise ObjectFormatError(f"buffer at {offset}+{length} lies outside the object's {size} bytes")
    return pickle_length, entries

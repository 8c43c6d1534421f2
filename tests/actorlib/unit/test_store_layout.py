"""The stored-object byte layout: round trips, alignment, zero copy, corrupt headers."""

from __future__ import annotations

import mmap
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorlib._serial import serialize
from actorlib._store import ObjectFormatError, object_pieces, object_size, read_object, write_object
from actorlib._store._layout import ALIGNMENT

plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=5)
    | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=30,
)


def laid_out(value: Any, *, slack: int = 0) -> bytearray:
    serialized = serialize(value)
    buf = bytearray(object_size(serialized) + slack)
    write_object(buf, serialized)
    return buf


def address_range(buf: bytearray | mmap.mmap) -> tuple[int, int]:
    start = np.frombuffer(buf, dtype=np.uint8).ctypes.data
    return start, start + len(buf)


def data_pointer(arr: np.ndarray) -> int:
    return arr.__array_interface__["data"][0]


@given(plain)
@settings(max_examples=200, deadline=None)
def test_plain_values_round_trip(value: Any) -> None:
    assert read_object(laid_out(value)) == value


def test_bytes_past_the_object_are_ignored() -> None:
    assert read_object(laid_out({"k": [1, 2]}, slack=100)) == {"k": [1, 2]}


ARRAYS = [
    np.arange(1000, dtype=np.uint8),
    np.arange(24, dtype=np.int64).reshape(2, 3, 4),
    np.linspace(0, 1, 33, dtype=np.float32),
    np.ones((5, 7), dtype=np.float64, order="F"),
    np.array([1 + 2j, 3 - 4j], dtype=np.complex128),
    np.array([True, False, True]),
    np.zeros(4, dtype=[("x", "<i4"), ("y", "<f8")]),
    np.array(["ab", "cde"], dtype="<U5"),
    np.empty((0,), dtype=np.float64),
    np.empty((0, 3), dtype=np.int32),
    np.array(3.5),
    np.arange(100, dtype=np.int16)[::3],  # non-contiguous: pickled in band
    np.arange(12, dtype=np.float64).reshape(3, 4).T[1:],
    np.array([{"a": 1}, None], dtype=object),
]


@pytest.mark.parametrize("arr", ARRAYS, ids=lambda a: f"{a.dtype}{a.shape}")
def test_arrays_round_trip(arr: np.ndarray) -> None:
    back = read_object(laid_out(arr))
    assert back.dtype == arr.dtype and back.shape == arr.shape
    assert np.array_equal(back, arr) if arr.dtype != object else list(back) == list(arr)


def test_several_buffers_are_each_64_byte_aligned_and_zero_copy() -> None:
    arrays = [np.arange(n, dtype=np.uint8) for n in (1, 63, 65, 1000, 3)]
    serialized = serialize(arrays)
    assert len(serialized.buffers) == len(arrays)
    memory = mmap.mmap(-1, object_size(serialized))  # page-aligned, like a store mapping
    write_object(memory, serialized)
    start, end = address_range(memory)
    back = read_object(memory)
    for arr, original in zip(back, arrays):
        assert data_pointer(arr) % ALIGNMENT == 0
        assert start <= data_pointer(arr) and data_pointer(arr) + arr.nbytes <= end
        assert np.array_equal(arr, original)


def test_array_is_backed_by_the_buffer_written_to() -> None:
    buf = laid_out(np.arange(50_000, dtype=np.float64))
    start, end = address_range(buf)
    arr = read_object(buf)
    assert start <= data_pointer(arr) < end
    assert arr.flags.writeable
    arr[0] = 42.0  # writes through to the buffer: the array is a view, not a copy
    assert read_object(buf)[0] == 42.0


def test_read_only_buffer_gives_read_only_arrays() -> None:
    arr = read_object(memoryview(bytes(laid_out(np.arange(10)))))
    assert not arr.flags.writeable
    with pytest.raises(ValueError):
        arr[0] = 1


@pytest.mark.parametrize("value", [[], np.arange(7), [np.arange(n, dtype=np.uint8) for n in (0, 1, 64, 65)]])
def test_pieces_concatenate_to_the_object(value: Any) -> None:
    serialized = serialize(value)
    joined = b"".join(bytes(piece) for piece in object_pieces(serialized))
    assert len(joined) == object_size(serialized)
    assert joined == bytes(laid_out(value))


def test_write_needs_enough_room() -> None:
    serialized = serialize(np.arange(100))
    with pytest.raises(ValueError, match="cannot hold"):
        write_object(bytearray(object_size(serialized) - 1), serialized)


def test_write_needs_a_writable_buffer() -> None:
    serialized = serialize([1, 2, 3])
    with pytest.raises(ValueError, match="writable"):
        write_object(bytes(object_size(serialized)), serialized)


def test_bad_magic_is_rejected() -> None:
    buf = laid_out([1, 2, 3])
    buf[0:4] = b"NOPE"
    with pytest.raises(ObjectFormatError, match="magic"):
        read_object(buf)


def test_unknown_version_is_rejected() -> None:
    buf = laid_out([1, 2, 3])
    struct.pack_into("<I", buf, 4, 99)
    with pytest.raises(ObjectFormatError, match="version 99"):
        read_object(buf)


def test_truncated_object_is_rejected() -> None:
    buf = laid_out(np.arange(100))
    with pytest.raises(ObjectFormatError):
        read_object(buf[:10])
    with pytest.raises(ObjectFormatError, match="outside"):
        read_object(buf[: len(buf) - 1])


def test_buffer_table_cannot_point_into_the_header() -> None:
    buf = laid_out(np.arange(100))
    struct.pack_into("<Q", buf, 24, 0)  # first buffer's offset
    with pytest.raises(ObjectFormatError, match="outside"):
        read_object(buf)

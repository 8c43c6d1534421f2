"""FrameReader: frames survive any chunking, oversized frames are refused, partial bytes are counted."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorlib._wire import DEFAULT_MAX_FRAME, FrameReader, ProtocolError
from actorlib._wire._framing import HEADER


def frame(payload: bytes) -> bytes:
    return len(payload).to_bytes(4, "big") + payload


payloads = st.lists(st.binary(max_size=300), max_size=20)


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    """``data`` cut at arbitrary points (empty chunks included)."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=30)))
    bounds = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


@given(payloads, st.data())
@settings(max_examples=300, deadline=None)
def test_frames_come_back_exactly_and_in_order_whatever_the_chunking(items: list[bytes], data: st.DataObject) -> None:
    stream = b"".join(frame(p) for p in items)
    reader = FrameReader()
    received: list[bytes] = []
    for chunk in data.draw(chunked(stream)):
        received.extend(reader.feed(chunk))
    assert received == items
    assert reader.pending == 0


@given(payloads, st.binary(min_size=1, max_size=300), st.data())
@settings(max_examples=200, deadline=None)
def test_pending_counts_the_bytes_of_the_incomplete_frame(
    items: list[bytes], last: bytes, data: st.DataObject
) -> None:
    reader = FrameReader()
    partial = frame(last)[: data.draw(st.integers(0, HEADER + len(last) - 1))]
    received = reader.feed(b"".join(frame(p) for p in items) + partial)
    assert received == items
    assert reader.pending == len(partial)
    assert reader.feed(frame(last)[len(partial) :]) == [last]
    assert reader.pending == 0


def test_one_byte_at_a_time() -> None:
    reader = FrameReader()
    stream = frame(b"hello") + frame(b"") + frame(b"world")
    received = []
    for i in range(len(stream)):
        received.extend(reader.feed(stream[i : i + 1]))
    assert received == [b"hello", b"", b"world"]


def test_an_empty_frame_is_a_frame() -> None:
    assert FrameReader().feed(frame(b"")) == [b""]


def test_oversized_length_prefix_raises_naming_the_limit() -> None:
    reader = FrameReader(max_frame=1000)
    with pytest.raises(ProtocolError, match=r"1001 bytes.*1000-byte limit"):
        reader.feed((1001).to_bytes(4, "big"))


def test_oversized_frame_is_refused_before_its_payload_arrives() -> None:
    # Only the header is fed: the reader must not wait to buffer 4 GiB first.
    with pytest.raises(ProtocolError, match=str(DEFAULT_MAX_FRAME)):
        FrameReader().feed(b"\xff\xff\xff\xff")


def test_oversized_frame_after_good_ones_still_raises() -> None:
    reader = FrameReader(max_frame=10)
    with pytest.raises(ProtocolError, match="10-byte limit"):
        reader.feed(frame(b"ok") + frame(b"x" * 11))


def test_a_frame_of_exactly_the_limit_is_accepted() -> None:
    assert FrameReader(max_frame=10).feed(frame(b"x" * 10)) == [b"x" * 10]


def test_pending_counts_a_partial_header() -> None:
    reader = FrameReader()
    assert reader.feed(b"\x00\x00") == []
    assert reader.pending == 2
    assert reader.feed(b"\x00\x01") == []
    assert reader.pending == 4
    assert reader.feed(b"z") == [b"z"]
    assert reader.pending == 0


@given(payloads, st.data())
@settings(max_examples=200, deadline=None)
def test_frames_are_copies_so_the_caller_may_reuse_what_it_fed(items: list[bytes], data: st.DataObject) -> None:
    """Channels feed views of one scratch buffer that the next read overwrites."""
    stream = b"".join(frame(p) for p in items)
    scratch = bytearray(len(stream) + 1)
    reader = FrameReader()
    received: list[bytes] = []
    for chunk in data.draw(chunked(stream)):
        scratch[: len(chunk)] = chunk
        received.extend(reader.feed(memoryview(scratch)[: len(chunk)]))
        scratch[:] = b"\xee" * len(scratch)  # the next read lands here
    assert received == items


def test_a_frame_spanning_feeds_is_gathered_in_one_buffer_of_its_size() -> None:
    payload = bytes(range(256)) * 400
    reader = FrameReader()
    data = frame(payload)
    assert reader.feed(data[:10]) == []
    assert reader.pending == 10
    assert reader.feed(data[10:50_000]) == []
    assert reader.pending == 50_000
    (got,) = reader.feed(data[50_000:])
    assert got == payload and len(got) == len(payload)
    assert reader.pending == 0

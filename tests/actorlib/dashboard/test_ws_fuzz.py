"""Fuzzing WebSocket frames after an authenticated upgrade (the job log tail, the head's one
WebSocket endpoint): bad opcodes, reserved bits, fragmented or too long control frames, invalid
UTF-8 in text frames and close reasons, unmasked client frames, stray continuations, bad close
codes, random bytes, oversized frames. The server must hang up at once (hypercorn drops the
connection without a Close frame on a protocol error, a SHOULD of RFC 6455 7.1.7 it skips, and
sends 1009 for a message over the limit we set, 64 KiB), never hang, and keep serving the others (a
WebSocket opened before answers a ping, HTTP answers) with the head's RSS bounded.

Frames are built by wsproto (the library hypercorn speaks WebSocket with) and then, for the bad
ones, corrupted in their first bytes: no library writes an invalid frame on purpose.
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Event, Ping, Pong, Request
from wsproto.frame_protocol import FrameProtocol

from actorlib._http._server import WEBSOCKET_MAX_MESSAGE
from actorlib.job_submission import JobSubmissionClient

from ...fuzzcount import count
from ..integration.conftest import poll
from .conftest import Dash
from .test_http_fuzz import FUZZ, RSS_GROWTH_LIMIT, head_pid, rss, still_serving

pytestmark = pytest.mark.slow
WAIT = 30.0
PROTOCOL_ERRORS = {1002, 1007, 1009, None}  # protocol error, invalid payload (UTF-8), message too big; None: no Close frame
MiB = 2**20
ERRORS, VALID, RANDOM = 120, 40, 50  # examples


class WebSocket:
    """A client WebSocket on a blocking socket: wsproto speaks, the test may write raw bytes too."""

    def __init__(self, dash: Dash, path: str) -> None:
        host, port = dash.url.removeprefix("http://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=WAIT)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.pending: list[Event] = []
        self.eof = False
        auth = [(b"authorization", f"Bearer {dash.token}".encode())]
        self.sock.sendall(self.ws.send(Request(host=f"{host}:{port}", target=path, extra_headers=auth)))
        accepted = self.next_event()
        assert isinstance(accepted, AcceptConnection), accepted

    def next_event(self) -> Event | None:
        """The next event from the server, None once it has hung up (waits at most WAIT seconds)."""
        while not self.pending:
            if self.eof:
                return None
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if not data:
                self.eof = True  # (not told to wsproto, which would make up a Close frame: 1006)
                return None
            self.ws.receive_data(data)
            self.pending.extend(self.ws.events())
        return self.pending.pop(0)

    def answers_a_ping(self) -> bool:
        """Ping; True on its pong, False if the server closes first (a socket.timeout if neither)."""
        try:
            self.sock.sendall(self.ws.send(Ping(b"probe")))
        except OSError:
            return False
        while (event := self.next_event()) is not None:
            if isinstance(event, Pong) and event.payload == b"probe":
                return True
            if isinstance(event, CloseConnection):
                return False
        return False

    def closes(self) -> int | None:
        """Wait for the server to hang up or send a Close frame; that frame's code (None if it
        sent none). A Close frame is answered, as a client does. (After a 1009 hypercorn reads on
        through the rest of the refused message: the answer may wait for the client to hang up.)"""
        while (event := self.next_event()) is not None:
            if isinstance(event, CloseConnection):
                try:
                    self.sock.sendall(self.ws.send(event.response()))
                except OSError:
                    pass  # it did not wait for the answer
                return event.code
        return None

    def close(self) -> None:
        self.sock.close()


# ---- frames -------------------------------------------------------------------------------------


def client() -> FrameProtocol:
    return FrameProtocol(client=True, extensions=[])


def with_first_byte(frame: bytes | bytearray, first: int) -> bytes:
    return bytes([first]) + bytes(frame[1:])


BINARY, TEXT, CLOSE, PING = 0x2, 0x1, 0x8, 0x9
PAYLOAD = st.binary(max_size=120)
INVALID_UTF8 = st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"ok\xf8\x88\x80\x80\x80", b"\xe2\x82"])


def interleaved(payload: bytes) -> bytes:
    """A message in two fragments with a ping between them (allowed: control frames may interleave)."""
    protocol = client()
    return bytes(protocol.send_data(payload, fin=False)) + bytes(protocol.ping(b"x")) + bytes(protocol.send_data(b"end"))


def valid() -> st.SearchStrategy[tuple[str, bytes]]:
    """Frames a client may send (the tail endpoint ignores what it receives): the connection stays up."""

    def fragmented(parts: list[bytes]) -> bytes:
        protocol = client()
        return b"".join(bytes(protocol.send_data(part, fin=i == len(parts) - 1)) for i, part in enumerate(parts))

    return st.one_of(
        PAYLOAD.map(lambda p: ("binary frame", bytes(client().send_data(p)))),
        st.text(max_size=60).map(lambda t: ("text frame", bytes(client().send_data(t)))),
        st.lists(PAYLOAD, min_size=2, max_size=4).map(lambda ps: ("fragmented message", fragmented(ps))),
        PAYLOAD.map(lambda p: ("ping", bytes(client().ping(p)))),
        PAYLOAD.map(lambda p: ("unsolicited pong", bytes(client().pong(p)))),
        PAYLOAD.map(lambda p: ("fragment interleaved with a ping", interleaved(p))),
    )


def protocol_errors() -> st.SearchStrategy[tuple[str, bytes]]:
    """Frames no client may send: the server must hang up (with a protocol error code, if any)."""
    binary = PAYLOAD.map(lambda p: client().send_data(p))

    def close_frame(code: int, reason: bytes) -> bytes:
        frame = client().send_data(struct.pack("!H", code) + reason)  # a binary frame, then made a Close
        return with_first_byte(frame, 0x80 | CLOSE)

    return st.one_of(
        st.tuples(binary, st.sampled_from([3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF]))
        .map(lambda fo: ("bad opcode", with_first_byte(fo[0], 0x80 | fo[1]))),
        st.tuples(binary, st.integers(1, 7)).map(lambda fr: ("reserved bits", with_first_byte(fr[0], 0x80 | fr[1] << 4 | BINARY))),
        st.tuples(st.sampled_from([PING, 0xA, CLOSE]), st.binary(max_size=60))
        .map(lambda op: ("fragmented control frame", with_first_byte(client().ping(op[1]), op[0]))),
        st.binary(min_size=126, max_size=400).map(lambda p: ("control frame too long", with_first_byte(client().send_data(p), 0x80 | PING))),
        INVALID_UTF8.map(lambda p: ("invalid UTF-8 in a text frame", with_first_byte(client().send_data(p), 0x80 | TEXT))),
        PAYLOAD.map(lambda p: ("unmasked frame", bytes(FrameProtocol(client=False, extensions=[]).send_data(p)))),
        PAYLOAD.map(lambda p: ("stray continuation", with_first_byte(client().send_data(p), 0x80))),
        st.tuples(PAYLOAD, PAYLOAD).map(lambda pq: ("new message inside a fragmented one",
                                                    bytes(client().send_data(pq[0], fin=False)) + bytes(client().send_data(pq[1])))),  # fmt: skip
        st.sampled_from([0, 1, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535])
        .map(lambda code: ("close with a bad code", close_frame(code, b""))),
        INVALID_UTF8.map(lambda reason: ("close with an invalid UTF-8 reason", close_frame(1000, reason))),
        st.just(("close with a one-byte payload", with_first_byte(client().send_data(b"\x03"), 0x80 | CLOSE))),
    )


# ---- the suites ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tail(dash: Dash) -> Iterator[str]:
    """The log-tail WebSocket path of a job that runs until the tests are done."""
    jobs = JobSubmissionClient(dash.url, token=dash.token)
    sid = jobs.submit_job(entrypoint=f"{sys.executable} -c \"import time; print('up', flush=True); time.sleep(3600)\"")
    try:
        poll(lambda: jobs.get_job_status(sid) == "RUNNING", timeout=60)
        yield f"/api/jobs/{sid}/logs/tail"
    finally:
        jobs.stop_job(sid)
        poll(lambda: jobs.get_job_status(sid) in ("STOPPED", "SUCCEEDED", "FAILED"), timeout=60)
        jobs.delete_job(sid)
        jobs.close()


@contextmanager
def bystander(dash: Dash, path: str) -> Iterator[WebSocket]:
    """A WebSocket opened before the bad ones, which must keep answering."""
    other = WebSocket(dash, path)
    try:
        yield other
    finally:
        other.close()


def test_bad_websocket_frames_are_closed_with_a_protocol_error_and_nothing_else_is(dash: Dash, tail: str) -> None:
    pid = head_pid(dash)
    before = rss(pid)

    with bystander(dash, tail) as other:

        @settings(FUZZ, max_examples=ERRORS)
        @given(case=protocol_errors())
        def fuzz(case: tuple[str, bytes]) -> None:
            kind, data = case
            bad = WebSocket(dash, tail)
            try:
                bad.sock.sendall(data)
                code = bad.closes()
            finally:
                bad.close()
            count("websocket frames after upgrade", f"{kind} -> {code}")
            assert code in PROTOCOL_ERRORS, f"{kind}: {data[:40]!r} was answered with close code {code}"
            assert other.answers_a_ping(), "the other WebSocket stopped answering"

        fuzz()
    still_serving(dash)
    assert rss(pid) - before < RSS_GROWTH_LIMIT, f"the head's RSS grew by {(rss(pid) - before) / 2**20:.0f} MiB"


def test_valid_frames_keep_the_websocket_open(dash: Dash, tail: str) -> None:
    with bystander(dash, tail) as other:

        @settings(FUZZ, max_examples=VALID)
        @given(case=valid())
        def fuzz(case: tuple[str, bytes]) -> None:
            kind, data = case
            ws = WebSocket(dash, tail)
            try:
                ws.sock.sendall(data)
                assert ws.answers_a_ping(), f"{kind}: {data[:40]!r} closed the connection"
            finally:
                ws.close()
            count("websocket frames after upgrade", f"{kind} -> open")
            assert other.answers_a_ping()

        fuzz()
    still_serving(dash)


@pytest.mark.parametrize("declared", [2**63 - 1, 2**40, 17 * MiB])
def test_random_or_unfinished_frames_then_a_hang_up_are_let_go(dash: Dash, tail: str, declared: int) -> None:
    """A frame that claims more than it sends, then a half-close: the server hangs up, and what it
    buffered (at most the 64 KiB limit) is let go."""
    pid = head_pid(dash)
    before = rss(pid)
    with bystander(dash, tail) as other:
        for _ in range(3):
            bad = WebSocket(dash, tail)
            header = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", declared) + b"mask"
            try:
                bad.sock.sendall(header + b"\0" * (4 * MiB))
                bad.sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # it hung up before taking everything
            code = bad.closes()
            bad.close()
            count("websocket frames after upgrade", f"frame claiming {declared} bytes, 4 MiB sent -> {code}")
            assert code in (1009, None), code  # over the limit long before 4 MiB
            assert other.answers_a_ping()
    still_serving(dash)
    assert rss(pid) - before < RSS_GROWTH_LIMIT


def test_a_message_over_the_size_limit_is_refused_with_1009(dash: Dash, tail: str) -> None:
    with bystander(dash, tail) as other:
        limit = WEBSOCKET_MAX_MESSAGE
        for kind, parts in (("one frame over the limit", [b"\0" * (limit + 1)]), ("17 fragments of a sixteenth", [b"\0" * (limit // 16)] * 17)):
            bad = WebSocket(dash, tail)
            protocol = client()
            try:
                for i, part in enumerate(parts):
                    bad.sock.sendall(protocol.send_data(part, fin=i == len(parts) - 1))
            except OSError:
                pass  # it hung up before taking everything
            code = bad.closes()
            bad.close()
            count("websocket frames after upgrade", f"{kind} -> {code}")
            assert code == 1009, (kind, code)
            assert other.answers_a_ping()
    still_serving(dash)


@settings(FUZZ, max_examples=RANDOM)
@given(data=st.binary(min_size=1, max_size=300))
def test_random_bytes_after_the_upgrade_then_a_hang_up_are_let_go(dash: Dash, tail: str, data: bytes) -> None:
    bad = WebSocket(dash, tail)
    try:
        bad.sock.sendall(data)
        bad.sock.shutdown(socket.SHUT_WR)
        code = bad.closes()
    except OSError:
        code = None
    finally:
        bad.close()
    count("websocket frames after upgrade", f"random bytes -> {code}")
    assert code is None or code in PROTOCOL_ERRORS | {1000}, code

"""Malformed input on every socket of a live cluster closes that connection and nothing else."""

from __future__ import annotations

import msgspec
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actorlib
from actorlib import _core, _wire
from actorlib._wire import CoreMessage, HeadMessage, NodeMessage, StoreMessage


@actorlib.remote
def ping():
    return "pong"


def endpoints() -> dict[str, tuple[str, object]]:
    ident = _core.current().identity
    return {
        "head": (str(ident.session_dir / "sockets" / "head.sock"), HeadMessage),
        "node": (ident.node_address, NodeMessage),
        "store": (ident.store_address, StoreMessage),
        "driver": (ident.address, CoreMessage),
    }


async def closed_by_peer(stream: trio.SocketStream, timeout: float = 10) -> bool:
    """Whether the peer closes the connection (reads EOF) within ``timeout``."""
    with trio.move_on_after(timeout):
        while True:
            try:
                data = await stream.receive_some(65536)
            except trio.BrokenResourceError:
                return True
            if not data:
                return True
    return False


async def authenticated(address: str, decode_type: object) -> trio.SocketStream:
    """A raw stream to ``address`` that has passed the handshake."""
    stream = await _wire.open_stream(address if address.startswith("unix:") else f"unix:{address}")
    channel = _wire.Channel(stream, decode_type, peer=address)
    await channel.handshake_client(_core.current().identity.token, "test:00")
    return stream


GARBAGE = {
    "bad msgpack": b"\x00\x00\x00\x03\xc1\xc1\xc1",
    "wrong message type": len(msgspec.msgpack.encode(["nope", 1])).to_bytes(4, "big") + msgspec.msgpack.encode(["nope", 1]),
    "oversized frame": (2**31).to_bytes(4, "big") + b"x" * 16,
}


@pytest.mark.parametrize("kind", sorted(GARBAGE))
@pytest.mark.parametrize("server", ["head", "node", "store", "driver"])
async def test_garbage_after_handshake_closes_only_that_connection(cluster, server, kind):
    address, decode_type = endpoints()[server]
    stream = await authenticated(address, decode_type)
    await stream.send_all(GARBAGE[kind])
    assert await closed_by_peer(stream)
    await stream.aclose()
    assert actorlib.get(ping.remote(), timeout=30) == "pong"


@pytest.mark.parametrize("server", ["head", "node", "store", "driver"])
async def test_no_handshake_no_service(cluster, server):
    address, _ = endpoints()[server]
    stream = await _wire.open_stream(address if address.startswith("unix:") else f"unix:{address}")
    await stream.receive_some(4096)  # the server's Hello
    await stream.send_all(b"\x00\x00\x00\x05hello")
    assert await closed_by_peer(stream)
    await stream.aclose()


async def test_wrong_token_is_refused(cluster):
    address, decode_type = endpoints()["node"]
    stream = await _wire.open_stream(address)
    channel = _wire.Channel(stream, decode_type, peer=address)
    with pytest.raises(_wire.AuthenticationError, match="invalid cluster token"):
        await channel.handshake_client("not-the-token", "intruder:00")
    await stream.aclose()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(min_size=1, max_size=512), server=st.sampled_from(["node", "driver", "head"]))
def test_random_frames_never_crash_a_process(cluster, payload, server):
    address, decode_type = endpoints()[server]

    async def send() -> None:
        stream = await authenticated(address, decode_type)
        framed = len(payload).to_bytes(4, "big") + payload
        try:
            await stream.send_all(framed)
        except trio.BrokenResourceError:
            pass
        await stream.aclose()

    trio.run(send)
    assert actorlib.get(ping.remote(), timeout=30) == "pong"

"""The HTTP server child: one connection's trouble closes that connection, never the server."""

from __future__ import annotations

import trio
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from actorlib._http import HttpServer, create_app

TOKEN = "the-token"
# An HTTP/1.0 request, then bytes after it: hypercorn 0.18 answers the garbage with a 400 while
# it closes the connection, two sends at once on one stream (hypercorn issue #203). Uncontained,
# the BusyResourceError escaped its read loop and stopped the whole server, for every client.
PIPELINED = (
    b"GET /api/version HTTP/1.0\r\n\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n\r\n"
    b"Content-Length: 5\r\nContent-Length: 6\r\nNo-Colon\r\n\xd9\xf7\xf2\xa5\x05\x18[\xb9-"
)


async def version(request: object) -> PlainTextResponse:
    return PlainTextResponse("4")


async def exchange(host: str, port: int, data: bytes) -> bytes:
    stream = await trio.open_tcp_stream(host, port)
    async with stream:
        await stream.send_all(data)
        await stream.send_eof()
        answer = b""
        with trio.fail_after(30):
            try:
                while chunk := await stream.receive_some(65536):
                    answer += chunk
            except trio.BrokenResourceError:
                pass
        return answer


async def test_a_request_that_trips_hypercorn_closes_only_its_own_connection() -> None:
    server = HttpServer(lambda: create_app(TOKEN, [[Route("/api/version", version)]]), "127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        for _ in range(40):
            await exchange(host, int(port), PIPELINED)
            authorized = f"GET /api/version HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
            assert (await exchange(host, int(port), authorized)).startswith(b"HTTP/1.1 200")
        assert server.started == 1  # never crashed (its supervisor would have started it again)
        nursery.cancel_scope.cancel()


async def test_a_connection_is_closed_as_soon_as_its_client_hangs_up(monkeypatch) -> None:
    """hypercorn 0.18 kept an idle connection whose client had hung up (before any request, or
    after its replies when the server was done with the last one first) until the keep-alive
    timer ran out, its socket in CLOSE_WAIT meanwhile. Here that timer is an hour: the server
    must hang up within the test's deadline because the client did, not because of the timer."""
    monkeypatch.setattr("actorlib._http._server.KEEP_ALIVE_TIMEOUT", 3600.0)
    server = HttpServer(lambda: create_app(TOKEN, [[Route("/api/version", version)]]), "127.0.0.1", 0)
    async with trio.open_nursery() as nursery:
        await nursery.start(server.run)
        host, port = server.url.removeprefix("http://").rsplit(":", 1)
        request = f"GET /api/version HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode()
        for requests in (0, 2):  # none, or two replies on one connection (keep-alive still works)
            stream = await trio.open_tcp_stream(host, int(port))
            async with stream:
                for _ in range(requests):
                    await stream.send_all(request)
                    answer = b""
                    with trio.fail_after(30):
                        while not answer.endswith(b"\r\n\r\n4"):
                            answer += await stream.receive_some(65536)
                    assert answer.startswith(b"HTTP/1.1 200")
                await stream.send_eof()
                with trio.fail_after(30):
                    assert await stream.receive_some(65536) == b""  # the server hung up too
        nursery.cancel_scope.cancel()

"""The HTTP server: hypercorn's Trio worker serving the app, as a supervised task child of the head."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

import supervisors
import trio
from hypercorn.config import Config
from hypercorn.trio import run as _hypercorn_run
from hypercorn.trio import serve
from hypercorn.trio.tcp_server import TCPServer
from starlette.types import ASGIApp

from .._wire import is_loopback
from .._wire._throttle import CONNECTIONS

log = logging.getLogger("actorlib.http")
GRACEFUL_TIMEOUT = 1.0  # seconds open requests get to finish when the server stops
# Seconds an idle keep-alive connection (or one that has not sent a whole request) stays open.
# Short, so a silent stranger cannot hold connections; our clients send an idempotent request
# again when the server closed its connection just then (actorlib/_http/_client.py).
KEEP_ALIVE_TIMEOUT = 5.0
# The largest WebSocket message a client may send (hypercorn's default: 16 MiB). Our one WebSocket,
# the job log tail, reads nothing from the client but its close, so a small limit costs nothing
# and bounds what a connection can make the head buffer: over it, a Close 1009 and hang-up.
WEBSOCKET_MAX_MESSAGE = 64 * 1024


class _OneConnection(TCPServer):
    """hypercorn's server of one connection, contained: what that connection runs into closes it,
    never the server; and closed as soon as its peer has hung up.

    hypercorn 0.18 runs every connection in one nursery with no guard, so an exception out of one
    stops them all; and one does escape: bytes after an HTTP/1.0 request make it answer a 400
    while it closes the stream, two sends at once (trio.BusyResourceError, hypercorn issue #203).
    Anyone could stop the HTTP API that way, and every stop used up the head's restart budget.
    """

    async def _read_data(self) -> None:
        await super()._read_data()
        # The peer hung up, or said it sends nothing more: no request can follow on this
        # connection (one in flight was already dropped, its stream closed). hypercorn 0.18
        # would still keep an idle connection, socket and task, until its keep-alive timer
        # ran out: 5 s in CLOSE_WAIT for every client that closed after its reply. Stop the
        # timer, so the connection closes now.
        await self.idle_task.stop()

    async def run(self) -> None:
        try:
            await super().run()
        except* Exception as failed:  # never Cancelled: a BaseException
            first = failed.exceptions[0]
            if isinstance(first, _PEER_TROUBLE):  # the peer went away, or hypercorn #203
                log.debug("HTTP connection closed after %r", first)
            else:  # not expected: say so (bounded, a stranger may cause it at will)
                CONNECTIONS.warning(log, "HTTP connection closed after an unexpected %r", first)


_PEER_TROUBLE = (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError, ConnectionError)


_hypercorn_run.TCPServer = _OneConnection  # type: ignore[misc]  # what hypercorn's serve() runs per connection


class HttpServer:
    """Serves ``make_app()`` on ``host:port`` (0: any free port, kept across restarts).

    Each incarnation (:meth:`run`) builds a fresh app and binds again; ``url``
    is where it listens once started.
    """

    def __init__(self, make_app: Callable[[], ASGIApp], host: str = "127.0.0.1", port: int = 0) -> None:
        self.make_app = make_app
        self.host = host
        self.port = port
        self.url = ""
        self.started = 0  # incarnations started so far

    async def run(self, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        if not is_loopback(self.host):
            warning = (
                f"WARNING: the actorlib HTTP API (jobs: it runs commands) listens on {self.host}, "
                "reachable from other machines; every request needs the cluster token"
            )
            log.warning(warning)
            print(warning, file=sys.stderr, flush=True)
        config = Config()
        host = f"[{self.host}]" if ":" in self.host else self.host
        config.bind = [f"{host}:{self.port}"]
        config.graceful_timeout = GRACEFUL_TIMEOUT
        config.accesslog = None
        config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT
        config.websocket_max_message_size = WEBSOCKET_MAX_MESSAGE
        app = self.make_app()
        async with trio.open_nursery() as nursery:
            try:
                binds = await nursery.start(serve, app, config)
            except* OSError as failed:  # binding fails inside hypercorn's nurseries
                cause = _leaf(failed)
                raise OSError(
                    cause.errno,
                    f"the HTTP API cannot listen on {host}:{self.port}: {cause.strerror or cause} "
                    "(choose another port with --dashboard-port)",
                ) from None
            self.port = int(binds[0].rsplit(":", 1)[1])
            self.url = f"http://{host}:{self.port}"
            self.started += 1
            task_status.started(self.url)


def _leaf(group: BaseException) -> OSError:
    """The first OSError in a (nested) exception group."""
    while isinstance(group, BaseExceptionGroup):
        group = group.exceptions[0]
    assert isinstance(group, OSError)
    return group


def http_spec(server: HttpServer) -> supervisors.ChildSpec:
    """The server as a permanent child: if it crashes, its supervisor starts it again."""
    return supervisors.ChildSpec(id="http", start=lambda: supervisors.TaskChild(server.run))

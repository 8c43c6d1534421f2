"""The state API over HTTP: ``/api/state/...`` answers one query as JSON, ``/api/watch/...`` streams
it (Server-Sent Events) whenever the answer changes. Both call ``StateService.result`` — the
same entry point as the CLI — and encode the same Structs; see docs/dashboard.md for the paths.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import msgspec
import trio
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from .._state import DEFAULT_LIMIT, QueryError, parse_filter
from .._wire import StateQuery

Answer = Callable[[StateQuery], Awaitable[Any]]
SPECIAL = ("tree", "timeline", "stats")
CACHE_TTL = 0.5  # seconds one answer serves every watcher of the same query
KEEPALIVE = 15.0  # seconds between SSE comments when nothing changed (finds closed connections)
DEFAULT_INTERVAL = 1.0
MIN_INTERVAL = 0.5
_encode = msgspec.json.Encoder().encode


def parse_query(path: str, params: Mapping[str, str] | Any) -> StateQuery:
    """The StateQuery that ``/api/state/<path>?<params>`` asks (pure; QueryError names what is wrong).

    ``tree`` (node, depth), ``timeline``, ``stats``, ``summary/<kind>``, ``<kind>`` (filter=key=value
    or key!=value, repeated; limit; detail) and ``<kind>/<id>``.
    """
    parts = [part for part in path.strip("/").split("/") if part]
    if not parts:
        raise QueryError("name what to query: /api/state/<kind>, /api/state/tree, /api/state/summary/<kind>, ...")
    if parts[0] in SPECIAL and len(parts) == 1:
        args = {key: params[key] for key in ("node", "depth") if parts[0] == "tree" and key in params}
        return StateQuery(req=0, kind=parts[0], args=args)
    if parts[0] == "summary" and len(parts) == 2:
        return StateQuery(req=0, kind="summary", args={"of": parts[1]})
    if len(parts) > 2:
        raise QueryError(f"no such state path {path!r}: expected <kind> or <kind>/<id>")
    filters = [parse_filter(text) for text in _all(params, "filter")]
    limit = _integer(params.get("limit", str(DEFAULT_LIMIT)), "limit")
    detail = params.get("detail", "false").lower() in ("1", "true", "yes")
    args = {"id": parts[1]} if len(parts) == 2 else {}
    return StateQuery(req=0, kind=parts[0], filters=filters, limit=limit, detail=detail, args=args)


def _all(params: Any, key: str) -> Sequence[str]:
    return params.getlist(key) if hasattr(params, "getlist") else [params[key]] if key in params else []


def _integer(text: str, name: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise QueryError(f"{name} must be an integer, got {text!r}") from None


def encode_answer(query: StateQuery, result: Any) -> tuple[int, bytes]:
    """(status, JSON body): a get by id answers the item itself, or 404."""
    if "id" in query.args:
        if not result.items:
            return 404, _encode({"error": f"no {query.kind} with id {query.args['id']!r}"})
        return 200, _encode(result.items[0])
    return 200, _encode(result)


class QueryCache:
    """Coalesces identical queries: within ``ttl`` seconds every caller gets the same answer,
    and while one is being computed the others wait for it (one head query per query, not per tab)."""

    def __init__(self, answer: Answer, ttl: float = CACHE_TTL) -> None:
        self.answer = answer
        self.ttl = ttl
        self._entries: dict[bytes, tuple[float, tuple[int, bytes]]] = {}
        self._locks: dict[bytes, trio.Lock] = {}

    async def get(self, query: StateQuery) -> tuple[int, bytes]:
        key = msgspec.msgpack.encode(query)
        lock = self._locks.setdefault(key, trio.Lock())
        async with lock:
            now = trio.current_time()
            cached = self._entries.get(key)
            if cached is not None and now - cached[0] < self.ttl:
                return cached[1]
            answer = encode_answer(query, await self.answer(query))
            self._entries[key] = (trio.current_time(), answer)
            self._forget_old(trio.current_time())
            return answer

    def _forget_old(self, now: float) -> None:
        for key in [k for k, (at, _) in self._entries.items() if now - at > 60 * self.ttl]:
            del self._entries[key]
            lock = self._locks.get(key)
            if lock is not None and not lock.locked() and lock.statistics().tasks_waiting == 0:
                del self._locks[key]


class StateApi:
    """The routes: one-shot JSON answers and their live (SSE) twins."""

    def __init__(self, answer: Answer) -> None:
        self.cache = QueryCache(answer)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/api/state/{path:path}", self.state, methods=["GET"]),
            Route("/api/watch/{path:path}", self.watch, methods=["GET"]),
        ]

    async def state(self, request: Request) -> Response:
        try:
            query = parse_query(request.path_params["path"], request.query_params)
            status, body = await self.cache.get(query)
        except QueryError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        return Response(body, status_code=status, media_type="application/json")

    async def watch(self, request: Request) -> Response:
        try:
            query = parse_query(request.path_params["path"], request.query_params)
            interval = _interval(request.query_params.get("interval", str(DEFAULT_INTERVAL)))
            first = await self.cache.get(query)  # a bad query is refused now, not inside the stream
        except QueryError as exc:
            return PlainTextResponse(str(exc), status_code=400)
        headers = {"cache-control": "no-store", "x-accel-buffering": "no"}
        return StreamingResponse(self._events(query, interval, first), media_type="text/event-stream", headers=headers)

    async def _events(self, query: StateQuery, interval: float, first: tuple[int, bytes]) -> Any:
        last = b""
        quiet = 0.0
        answer = first
        while True:
            status, body = answer
            if body != last:
                last, quiet = body, 0.0
                yield (b"event: missing\n" if status == 404 else b"") + b"data: " + body + b"\n\n"
            elif quiet >= KEEPALIVE:
                quiet = 0.0
                yield b": keepalive\n\n"
            await trio.sleep(interval)
            quiet += interval
            try:
                answer = await self.cache.get(query)
            except QueryError as exc:  # e.g. the node it was about went away
                yield b"event: failed\ndata: " + _encode(str(exc)) + b"\n\n"
                return


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise QueryError(f"interval must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < MIN_INTERVAL or value > 60:
        raise QueryError(f"interval must be between {MIN_INTERVAL:g} and 60 seconds, got {text!r}")
    return value

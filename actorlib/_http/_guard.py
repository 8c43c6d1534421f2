"""The one gate in front of every route: the cluster token, and no foreign browser origins.

Pure ASGI middleware, so it guards WebSocket upgrades as well as requests:
no credentials → 401, wrong ones → 403; a state-changing request (or any
WebSocket) whose browser ``Origin`` is not this server's own → 403, the
defence against drive-by requests from other sites (Ray's CVE-2023-48022,
"ShadowRay"). Credentials come from ``credential_sources`` in order: the
``Authorization: Bearer`` header by default; the dashboard adds its session
cookie here. A source marked ``browser`` (a cookie the browser sends by itself)
must also come with this server's own ``Origin`` on a state change: a missing
Origin is refused too. ``public`` routes (the login form's POST) need no
credentials; ``scoped_tokens`` are read-only tokens for a few paths (a metrics
scraper's); ``challenge`` answers a request without credentials (the login page).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

CredentialSource = Callable[[Headers], "str | None"]
Challenge = Callable[[Scope, Headers], "tuple[bytes, str] | None"]  # (body, content type) of a 401
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ_ONLY = frozenset({"GET", "HEAD"})


def bearer(headers: Headers) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (or Ray's ``X-Ray-Authorization``)."""
    for name in ("authorization", "x-ray-authorization"):
        scheme, _, token = headers.get(name, "").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


class Guard:
    """ASGI middleware: authenticate every HTTP request and WebSocket, and check origins."""

    def __init__(
        self,
        app: ASGIApp,
        token: str,
        *,
        credential_sources: Iterable[CredentialSource] = (bearer,),
        allowed_origins: Iterable[str] = (),
        public: Collection[tuple[str, str]] = (),
        scoped_tokens: Mapping[str, Collection[str]] | None = None,
        challenge: Challenge | None = None,
    ) -> None:
        self.app = app
        self._token = token.encode()
        self.credential_sources = list(credential_sources)
        self.allowed_origins = {origin.rstrip("/").lower() for origin in allowed_origins}
        self.public = frozenset(public)  # (method, path)
        self.scoped_tokens = [(t.encode(), frozenset(paths)) for t, paths in (scoped_tokens or {}).items() if t]
        self.challenge = challenge

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.refusal(scope, headers)
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            page = self.challenge(scope, headers) if self.challenge is not None and refusal[0] == 401 else None
            if page is not None:
                await _respond(send, 401, page[0].decode(), content_type=page[1])
            else:
                await _respond(send, *refusal)
        else:
            await deny_websocket(scope, receive, send, *refusal)

    def refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        """(status, message) to refuse with, or None to let the request through."""
        method = scope.get("method", "GET")
        origin = headers.get("origin")
        changes = scope["type"] == "websocket" or method in STATE_CHANGING
        if (method, scope.get("path", "")) in self.public and scope["type"] == "http":
            return self._origin_refusal(origin, changes, headers)
        source, given = None, None
        for source in self.credential_sources:
            given = source(headers)
            if given:
                break
        if not given:
            return 401, "Unauthorized: Missing authentication token"
        if not hmac.compare_digest(given.encode(), self._token):
            if method in READ_ONLY and any(
                scope.get("path") in paths and hmac.compare_digest(given.encode(), scoped) for scoped, paths in self.scoped_tokens
            ):
                return None
            return 403, "Forbidden: Invalid authentication token"
        if changes and origin is None and getattr(source, "browser", False):
            return 403, "Forbidden: a state change authenticated by the session cookie must come from this server's pages (no Origin header)"
        return self._origin_refusal(origin, changes, headers)

    def _origin_refusal(self, origin: str | None, changes: bool, headers: Headers) -> tuple[int, str] | None:
        if origin is not None and changes and not self._same_origin(origin, headers):
            return 403, f"Forbidden: cross-origin request from {origin} refused (only this server's own pages may change state)"
        return None

    def _same_origin(self, origin: str, headers: Headers) -> bool:
        origin = origin.rstrip("/").lower()
        host = headers.get("host", "").lower()
        return origin in self.allowed_origins or (bool(host) and origin in (f"http://{host}", f"https://{host}"))


async def _respond(
    send: Send, status: int, text: str, prefix: str = "http", content_type: str = "text/plain; charset=utf-8"
) -> None:
    """A plain-text answer (``prefix`` "websocket.http" for a refused WebSocket upgrade)."""
    body = text.encode()
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    if content_type.startswith("text/html"):
        headers += [(b"cache-control", b"no-store"), (b"x-frame-options", b"DENY")]
    await send({"type": f"{prefix}.response.start", "status": status, "headers": headers})
    await send({"type": f"{prefix}.response.body", "body": body})


async def deny_websocket(scope: Scope, receive: Receive, send: Send, status: int, text: str) -> None:
    """Refuse a WebSocket upgrade with an HTTP status (or close 1008 where the server cannot)."""
    message: Any = await receive()  # websocket.connect
    if message.get("type") != "websocket.connect":
        return
    if "websocket.http.response" in scope.get("extensions", {}):
        await _respond(send, status, text, prefix="websocket.http")
    else:
        await send({"type": "websocket.close", "code": 1008, "reason": text[:120]})

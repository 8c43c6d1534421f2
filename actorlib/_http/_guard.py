"""The one gate in front of every route: the cluster token, and no foreign browser origins.

Pure ASGI middleware, so it guards WebSocket upgrades as well as requests:
no credentials → 401, wrong ones → 403; a state-changing request (or any
WebSocket) whose browser ``Origin`` is not this server's own → 403, the
defence against drive-by requests from other sites (Ray's CVE-2023-48022,
"ShadowRay"). Credentials come from ``credential_sources`` in order: the
``Authorization: Bearer`` header by default; the dashboard adds its session
cookie here.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable
from typing import Any

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

CredentialSource = Callable[[Headers], "str | None"]
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


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
    ) -> None:
        self.app = app
        self._token = token.encode()
        self.credential_sources = list(credential_sources)
        self.allowed_origins = {origin.rstrip("/").lower() for origin in allowed_origins}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.refusal(scope, headers)
        if refusal is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            await _respond(send, *refusal)
        else:
            await deny_websocket(scope, receive, send, *refusal)

    def refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        """(status, message) to refuse with, or None to let the request through."""
        given = next((c for c in (source(headers) for source in self.credential_sources) if c), None)
        if given is None:
            return 401, "Unauthorized: Missing authentication token"
        if not hmac.compare_digest(given.encode(), self._token):
            return 403, "Forbidden: Invalid authentication token"
        origin = headers.get("origin")
        changes = scope["type"] == "websocket" or scope.get("method", "GET") in STATE_CHANGING
        if origin is not None and changes and not self._same_origin(origin, headers):
            return 403, f"Forbidden: cross-origin request from {origin} refused (only this server's own pages may change state)"
        return None

    def _same_origin(self, origin: str, headers: Headers) -> bool:
        origin = origin.rstrip("/").lower()
        host = headers.get("host", "").lower()
        return origin in self.allowed_origins or (bool(host) and origin in (f"http://{host}", f"https://{host}"))


async def _respond(send: Send, status: int, text: str, prefix: str = "http") -> None:
    """A plain-text answer (``prefix`` "websocket.http" for a refused WebSocket upgrade)."""
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
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

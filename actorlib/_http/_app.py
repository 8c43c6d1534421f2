"""The head's HTTP application: the Jobs API now, more route groups (the dashboard) mounted beside it."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute

from ._guard import Challenge, CredentialSource, Guard, bearer

log = logging.getLogger("actorlib.http")


async def _not_found(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"Not found: {request.url.path}", status_code=404)


async def _method_not_allowed(request: Request, exc: Exception) -> Response:
    return PlainTextResponse(f"Method {request.method} not allowed on {request.url.path}", status_code=405)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("HTTP %s %s failed", request.method, request.url.path, exc_info=exc)
    return PlainTextResponse(f"Internal error: {type(exc).__name__}: {exc}", status_code=500)


def create_app(
    token: str,
    route_groups: Iterable[Iterable[BaseRoute]],
    *,
    credential_sources: Iterable[CredentialSource] = (bearer,),
    allowed_origins: Iterable[str] = (),
    public: Iterable[tuple[str, str]] = (),
    scoped_tokens: dict[str, list[str]] | None = None,
    challenge: Challenge | None = None,
) -> Starlette:
    """One Starlette app for every route group, every route behind :class:`Guard`.

    Later faces add a group of routes (and, for a browser login, a credential
    source) without touching the others.
    """
    routes = [route for group in route_groups for route in group]
    guard = Middleware(
        Guard, token=token, credential_sources=list(credential_sources), allowed_origins=list(allowed_origins),
        public=list(public), scoped_tokens=scoped_tokens, challenge=challenge,
    )  # fmt: skip
    return Starlette(
        routes=routes,
        middleware=[guard],
        exception_handlers={404: _not_found, 405: _method_not_allowed, Exception: _server_error},
    )

"""The dashboard: its route groups, its login, its sampler, as the head's HTTP app mounts them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

import supervisors
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import Scope

from .._http import bearer
from .._wire import StateQuery
from ._history import StatsHistory, history_spec
from ._metrics import metrics_route
from ._pages import Assets, login_headers
from ._sessions import Sessions, login, logout
from ._state_api import StateApi

Answer = Callable[[StateQuery], Awaitable[Any]]


class Dashboard:
    """Pages, the state API over HTTP, ``/metrics`` and the plots' history, over one state entry point.

    ``answer`` is ``StateService.result``; ``metrics_token`` (if any) may read ``/metrics`` only.
    One instance lives as long as the head process: logins and the history survive the HTTP
    server's restarts.
    """

    def __init__(self, token: str, answer: Answer, *, metrics_token: str = "") -> None:
        self.answer = answer
        self.sessions = Sessions(token)
        self.history = StatsHistory(lambda: answer(StateQuery(req=0, kind="stats")))
        self.state_api = StateApi(answer)
        self.assets = Assets()
        self.metrics_token = metrics_token

    def routes(self) -> list[BaseRoute]:
        return [
            *self.assets.routes(),
            Route("/login", self._login, methods=["GET", "POST"]),
            Route("/logout", self._logout, methods=["POST"]),
            *self.state_api.routes(),
            Route("/api/history", self._history, methods=["GET"]),
            Route("/metrics", metrics_route(self.answer), methods=["GET"]),
        ]

    def app_options(self) -> dict[str, Any]:
        """What ``create_app`` needs besides the routes: credentials, the public login POST, the challenge."""
        return {
            "credential_sources": [bearer, self.sessions.credential],
            "public": [("POST", "/login")],
            "scoped_tokens": {self.metrics_token: ["/metrics"]} if self.metrics_token else None,
            "challenge": self.challenge,
        }

    def challenge(self, scope: Scope, headers: Headers) -> tuple[bytes, str] | None:
        query = scope.get("query_string", b"").decode("latin-1")
        return self.assets.challenge(scope.get("path", ""), headers.get("accept", ""), query)

    def children(self) -> list[supervisors.ChildSpec]:
        return [history_spec(self.history)]

    async def _login(self, request: Request) -> Response:
        if request.method == "GET":  # only reached with credentials: nothing to log in to
            return RedirectResponse("/", status_code=303)
        response = await login(request, self.sessions, self.assets.login_page)
        if response.status_code == 401:
            response.headers.update(login_headers())
        return response

    async def _logout(self, request: Request) -> Response:
        return await logout(request, self.sessions)

    async def _history(self, request: Request) -> Response:
        return Response(msgspec.json.encode(self.history.snapshot()), media_type="application/json")


"""Browser logins: the token typed once into a form, then an HttpOnly, SameSite=Strict session cookie.

The cookie holds a random session id, never the token; the head keeps the live
ids in memory (a head restart logs everyone out). Cookies are per host, not per
port, so the cookie's name carries the port: two clusters on one machine keep
their own logins.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .._http._body import HttpError, read_body

COOKIE_PREFIX = "actorlib_session_"
MAX_SESSIONS = 1000  # past this, the oldest login is forgotten
SESSION_LIFETIME = 7 * 24 * 3600.0  # seconds; an operator's tab stays logged in for a week
MAX_FORM = 16 * 1024


def cookie_name(headers: Headers) -> str:
    """``actorlib_session_<port>``, the port taken from the request's Host header."""
    host = headers.get("host", "")
    port = host.rsplit(":", 1)[1] if ":" in host and not host.endswith("]") else "80"
    return COOKIE_PREFIX + (port if port.isdigit() else "80")


def safe_next(target: str) -> str:
    """Where to go after logging in: a path on this server, never another site."""
    parts = urlsplit(target)
    if not target.startswith("/") or target.startswith("//") or parts.scheme or parts.netloc or "\\" in target:
        return "/"
    return target


class Sessions:
    """Live browser sessions of one HTTP server (kept across the server's restarts by its owner)."""

    def __init__(self, token: str, *, lifetime: float = SESSION_LIFETIME, max_sessions: int = MAX_SESSIONS) -> None:
        self._token = token
        self.lifetime = lifetime
        self.max_sessions = max_sessions
        self._sessions: OrderedDict[str, float] = OrderedDict()  # id -> expiry (time.time())

    def create(self) -> str:
        session = secrets.token_urlsafe(32)
        self._sessions[session] = time.time() + self.lifetime
        while len(self._sessions) > self.max_sessions:
            self._sessions.popitem(last=False)
        return session

    def valid(self, session: str) -> bool:
        expiry = self._sessions.get(session)
        if expiry is None:
            return False
        if expiry < time.time():
            del self._sessions[session]
            return False
        return True

    def end(self, session: str) -> None:
        self._sessions.pop(session, None)

    def session_of(self, headers: Headers) -> str | None:
        raw = headers.get("cookie")
        if not raw:
            return None
        cookies: SimpleCookie = SimpleCookie()
        try:
            cookies.load(raw)
        except CookieError:
            return None
        morsel = cookies.get(cookie_name(headers))
        return morsel.value if morsel is not None else None

    def check_token(self, given: str) -> bool:
        return hmac.compare_digest(given.strip().encode(), self._token.encode())

    @property
    def credential(self) -> SessionCookie:
        return SessionCookie(self)


class SessionCookie:
    """The Guard's credential source for the session cookie: the token, if the cookie names a live session."""

    browser = True  # the browser sends it by itself: a state change must carry this server's Origin

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    def __call__(self, headers: Headers) -> str | None:
        session = self.sessions.session_of(headers)
        return self.sessions._token if session and self.sessions.valid(session) else None


async def login(request: Request, sessions: Sessions, page: Callable[[str, str], bytes]) -> Response:
    """POST /login (form: token, next): a session cookie and a redirect, or the form again (401)."""
    try:
        body = await read_body(request, MAX_FORM, "a login form")
    except HttpError as exc:
        return exc.response()
    form = parse_qs(body.decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0]
    target = safe_next((form.get("next") or ["/"])[0])
    if not token or not sessions.check_token(token):
        return Response(page("Wrong token: that is not the token of this cluster.", target), status_code=401, media_type="text/html", headers={"cache-control": "no-store"})
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(cookie_name(request.headers), sessions.create(), httponly=True, samesite="strict", path="/")
    return response


async def logout(request: Request, sessions: Sessions) -> Response:
    """POST /logout: forget the session; the cookie is cleared."""
    session = sessions.session_of(request.headers)
    if session:
        sessions.end(session)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(cookie_name(request.headers), httponly=True, samesite="strict", path="/")
    return response

"""The dashboard's pages and static files, read once from the package (``static/``).

Every page is the same shell (``index.html``); ``app.js`` draws the page its
path names and keeps it live. The login form is the answer to any page
request without credentials (status 401).
"""

from __future__ import annotations

import hashlib
import html
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

PAGES = ("/", "/nodes", "/actors", "/jobs", "/tasks", "/placement-groups", "/tree")
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml", ".html": "text/html"}
PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
LOGIN_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"


def _page_headers(policy: str) -> dict[str, str]:
    return {
        "content-security-policy": policy, "x-frame-options": "DENY", "cache-control": "no-store",
        "referrer-policy": "same-origin", "x-content-type-options": "nosniff",
    }  # fmt: skip


class Assets:
    """The static files, in memory (a few tens of kilobytes), each with its ETag."""

    def __init__(self) -> None:
        folder = resources.files("actorlib._dashboard") / "static"
        self.files: dict[str, tuple[bytes, str]] = {}
        for entry in folder.iterdir():
            if entry.is_file():
                data = entry.read_bytes()
                self.files[entry.name] = (data, hashlib.sha256(data).hexdigest()[:16])
        self.shell = self.files["index.html"][0]
        self._login = self.files["login.html"][0].decode()

    def login_page(self, message: str = "", target: str = "/") -> bytes:
        text = self._login.replace("{{message}}", html.escape(message)).replace("{{next}}", html.escape(target, quote=True))
        return text.encode()

    def routes(self) -> list[BaseRoute]:
        return [Route(path, self.page, methods=["GET"]) for path in PAGES] + [
            Route("/static/{name}", self.static, methods=["GET"])
        ]

    async def page(self, request: Request) -> Response:
        return Response(self.shell, media_type="text/html", headers=_page_headers(PAGE_POLICY))

    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        found = self.files.get(name)
        if found is None or name in ("index.html", "login.html"):
            return Response(f"Not found: /static/{name}", status_code=404, media_type="text/plain")
        data, etag = found
        headers = {"etag": f'"{etag}"', "cache-control": "no-cache", "x-content-type-options": "nosniff"}
        if request.headers.get("if-none-match") == f'"{etag}"':
            return Response(status_code=304, headers=headers)
        suffix = name[name.rfind(".") :]
        return Response(data, media_type=STATIC_TYPES.get(suffix, "application/octet-stream"), headers=headers)

    def challenge(self, path: str, accept: str, query: str = "") -> tuple[bytes, str] | None:
        """The login page, for a browser asking for a page without credentials (then back to it)."""
        if path in PAGES or path == "/login":
            if "text/html" in accept:
                target = f"{path}?{query}" if query and path != "/login" else path
                return self.login_page("", target), "text/html; charset=utf-8"
        return None


def login_headers() -> dict[str, str]:
    return _page_headers(LOGIN_POLICY)

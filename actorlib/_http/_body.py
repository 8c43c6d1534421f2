"""Reading request bodies with a size limit, and the errors every route answers with."""

from __future__ import annotations

import contextlib

from starlette.requests import Request
from starlette.responses import PlainTextResponse


class HttpError(Exception):
    """A request to refuse with ``status`` and a plain-text message (never a 500)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> PlainTextResponse:
        return PlainTextResponse(self.message, status_code=self.status)


async def read_body(request: Request, limit: int, what: str) -> bytes:
    """The whole body, or HttpError(413) as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HttpError(400, f"invalid Content-Length {declared!r}")
        if int(declared) > limit:
            raise HttpError(413, f"{what} of {int(declared):,} bytes is over the {limit:,}-byte limit")
    chunks = []
    size = 0
    async with contextlib.aclosing(request.stream()) as stream:
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                raise HttpError(413, f"{what} is over the {limit:,}-byte limit")
            chunks.append(chunk)
    return b"".join(chunks)

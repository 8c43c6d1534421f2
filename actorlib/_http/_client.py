"""An httpx transport that sends an idempotent request again when a reused connection was closed.

A server may close an idle keep-alive connection at any moment (its timeout, a restart, a
connection it gave up on); a client that sends on it at that instant sees "Server disconnected
without sending a response". HTTP/1.1 lets a client retry an idempotent request then (RFC 9112,
section 9.3.1), as browsers do; httpx does not, so our clients do, once.
"""

from __future__ import annotations

import httpx

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})


class RetryingTransport(httpx.HTTPTransport):
    """``methods``: the methods sent again (idempotent ones; a caller that knows its requests
    have no effect, such as a test of refused requests, may name more)."""

    def __init__(self, *args: object, methods: frozenset[str] = IDEMPOTENT, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.methods = methods

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return super().handle_request(request)
        except httpx.RemoteProtocolError:
            if request.method not in self.methods or not isinstance(request.stream, httpx.ByteStream):
                raise  # a POST may have been acted on; a streamed body cannot be sent twice
            return super().handle_request(request)

"""The one error a connection attempt raises, whatever went wrong on the way."""

from __future__ import annotations

from typing import Any


class ConnectionFailed(ConnectionError):
    """A connection to ``address`` could not be opened and authenticated.

    Nobody listens there, the peer closed the connection or froze during the
    handshake (it is bounded by a timeout), it sent garbage, or it refused our
    token (:class:`AuthenticationError`, a subclass). The original error is the
    ``__cause__``. A ConnectionError, hence an OSError: code that handles a
    refused connection handles every other way of failing too.
    """

    def __init__(self, message: str, *, address: str = "") -> None:
        super().__init__(message)
        self.address = address

    def __reduce__(self) -> Any:
        return (_rebuild, (type(self), str(self), self.address))


def _rebuild(cls: type[ConnectionFailed], message: str, address: str) -> ConnectionFailed:
    return cls(message, address=address)

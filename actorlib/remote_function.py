"""Remote functions, under Ray's module name (``ray.remote_function``)."""

from ._remote_function import RemoteFunction

__all__ = ["RemoteFunction"]

"""``actorlib.timeline()``: Ray's ``ray.timeline(filename=None)``."""

from __future__ import annotations

from typing import Any


def timeline(filename: str | None = None) -> list[dict[str, Any]] | None:
    """The cluster's recent tasks and actor calls as Chrome trace events (open them in
    chrome://tracing or Perfetto): returned, or written to ``filename`` (then None), as Ray does.
    """
    from ._core import current
    from .util.state import timeline as state_timeline

    events = state_timeline(address=current().identity.head_address, filename=filename)
    return None if filename is not None else events

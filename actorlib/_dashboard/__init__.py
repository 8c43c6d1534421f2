"""The web dashboard and ``/metrics`` on the head's HTTP server (docs/dashboard.md).

Pages (static files in ``static/``, no build step), a login that sets a session
cookie, the state API as JSON and as live Server-Sent Events, the plots' ring
buffer, and Prometheus metrics — all over ``StateService.result``.
"""

from ._dashboard import Dashboard
from ._history import History, StatsHistory, history_spec
from ._metrics import families, scrape
from ._sessions import Sessions, cookie_name, safe_next
from ._state_api import QueryCache, parse_query

__all__ = [
    "Dashboard", "History", "QueryCache", "Sessions", "StatsHistory", "cookie_name", "families", "history_spec",
    "parse_query", "safe_next", "scrape",
]  # fmt: skip

"""The head's HTTP service: one Starlette app on hypercorn's Trio worker, behind one auth gate.

Route groups: the Jobs REST API (``JobsApi``); the dashboard mounts its own beside it.
"""

from ._app import create_app
from ._guard import Guard, bearer
from ._jobs_api import API_VERSION, RAY_VERSION, JobsApi
from ._server import HttpServer, http_spec

__all__ = ["API_VERSION", "RAY_VERSION", "Guard", "HttpServer", "JobsApi", "bearer", "create_app", "http_spec"]

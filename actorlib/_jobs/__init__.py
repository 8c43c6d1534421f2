"""Jobs: shell commands submitted to the cluster, run and supervised by the head, with records.

``JobManager`` is the one place that knows jobs; the HTTP API, the CLI (over
HTTP) and the state queries read it.
"""

from ._manager import JobManager
from ._records import TERMINAL, JobError, JobRecord, JobSubmitRequest, details
from ._tree import jobs_spec

__all__ = [
    "TERMINAL",
    "JobError",
    "JobManager",
    "JobRecord",
    "JobSubmitRequest",
    "details",
    "jobs_spec",
]

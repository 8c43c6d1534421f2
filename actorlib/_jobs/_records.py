"""Job records, submit requests, and the status rules, with Ray's names and messages (pure)."""

from __future__ import annotations

import re
import secrets
import string
import time
from typing import Any

import msgspec

from .._runtime_env import check_runtime_env

PENDING, RUNNING, STOPPED, SUCCEEDED, FAILED = "PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"
TERMINAL = frozenset({STOPPED, SUCCEEDED, FAILED})
LOG_TAIL_CHARS = 20_000

MESSAGES = {
    PENDING: "Job has not started yet.",
    RUNNING: "Job is currently running.",
    STOPPED: "Job was intentionally stopped.",
    SUCCEEDED: "Job finished successfully.",
}
PENDING_WITH_PACKAGES = "Job has not started yet. It may be waiting for the runtime environment to be set up."
# Ray's JobErrorType values, where the same thing went wrong.
ENTRYPOINT_ERROR = "JOB_ENTRYPOINT_COMMAND_ERROR"
ENTRYPOINT_START_ERROR = "JOB_ENTRYPOINT_COMMAND_START_ERROR"
RUNTIME_ENV_ERROR = "RUNTIME_ENV_SETUP_FAILURE"
SUPERVISOR_DIED = "JOB_SUPERVISOR_ACTOR_DIED"
UNSCHEDULABLE = "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE"
START_TIMEOUT = "JOB_SUPERVISOR_ACTOR_START_TIMEOUT"

_SUBMISSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@+=-]{0,127}")


class JobError(Exception):
    """A request the job manager refuses: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class JobSubmitRequest(msgspec.Struct, kw_only=True):
    """``POST /api/jobs/``'s body, as Ray's clients send it."""

    entrypoint: str
    submission_id: str | None = None
    job_id: str | None = None  # Ray's deprecated alias of submission_id
    runtime_env: dict[str, Any] | None = None
    metadata: dict[str, str] | None = None
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_memory: int | None = None
    entrypoint_resources: dict[str, float] | None = None
    entrypoint_label_selector: dict[str, str] | None = None


class JobRecord(msgspec.Struct, kw_only=True):
    """One job as the head keeps it (in its state store)."""

    submission_id: str
    entrypoint: str
    status: str = PENDING
    message: str = MESSAGES[PENDING]
    error_type: str | None = None
    start_time: int = 0  # ms since the epoch, when submitted (as Ray)
    end_time: int | None = None
    metadata: dict[str, str] = {}
    runtime_env: dict[str, Any] = {}
    driver_exit_code: int | None = None
    job_id: str | None = None  # the actorlib job id of the driver, once its init() registered
    driver_node_id: str | None = None  # where the entrypoint runs (and its log file is), once placed
    driver_pid: int | None = None
    resources: dict[str, float] = {}  # what the entrypoint asked for (entrypoint_num_cpus, ...)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


def now_ms() -> int:
    return int(time.time() * 1000)


def new_submission_id() -> str:
    alphabet = string.ascii_letters + string.digits
    return "raysubmit_" + "".join(secrets.choice(alphabet) for _ in range(16))


def record_of(request: JobSubmitRequest) -> JobRecord:
    """A PENDING record for a submit request; raises JobError(400) naming a bad field."""
    if not request.entrypoint.strip():
        raise JobError(400, "entrypoint must be a non-empty command")
    if request.entrypoint_label_selector:
        raise JobError(
            400,
            "entrypoint_label_selector is not supported by actorlib: to run the entrypoint on a given node, ask "
            "for a custom resource that node was started with (entrypoint_resources)",
        )
    sid = request.submission_id or request.job_id or new_submission_id()
    if not _SUBMISSION_ID.fullmatch(sid):
        raise JobError(400, f"invalid submission_id {sid!r}: use up to 128 letters, digits and _.:@+=- (starting with a letter or digit)")
    try:
        runtime_env = check_runtime_env(request.runtime_env, where="job", uris_only=True)
    except (TypeError, ValueError) as exc:
        raise JobError(400, str(exc)) from None
    runtime_env.pop("excludes", None)  # only used by the client when zipping
    packages = bool(runtime_env.get("working_dir") or runtime_env.get("py_modules"))
    return JobRecord(
        submission_id=sid,
        entrypoint=request.entrypoint,
        message=PENDING_WITH_PACKAGES if packages else MESSAGES[PENDING],
        start_time=now_ms(),
        metadata=dict(request.metadata or {}),
        runtime_env=runtime_env,
        resources=_resources(request),
    )


def _resources(request: JobSubmitRequest) -> dict[str, float]:
    shape = {
        "CPU": request.entrypoint_num_cpus,
        "GPU": request.entrypoint_num_gpus,
        "memory": float(request.entrypoint_memory) if request.entrypoint_memory is not None else None,
        **(request.entrypoint_resources or {}),
    }
    for name, qty in shape.items():
        if qty is not None and not 0 <= qty < float("inf"):
            raise JobError(400, f"entrypoint resource {name!r} must be a finite non-negative number, got {qty!r}")
    return {name: float(qty) for name, qty in shape.items() if qty}


def waiting(record: JobRecord, why: str) -> JobRecord:
    """A PENDING record that says what it waits for (Ray's message, then why)."""
    return msgspec.structs.replace(record, message=f"{MESSAGES[PENDING]} It is {why}." if why else MESSAGES[PENDING])


def running(record: JobRecord, pid: int | None) -> JobRecord:
    return msgspec.structs.replace(record, status=RUNNING, message=MESSAGES[RUNNING], driver_pid=pid)


def ended(record: JobRecord, *, stopped: bool, code: int | None, log_tail: str) -> JobRecord:
    """The record once its entrypoint exited (``code``: exit status, negative for a signal)."""
    if stopped:
        return _final(record, STOPPED, MESSAGES[STOPPED], None, None)
    if code == 0:
        return _final(record, SUCCEEDED, MESSAGES[SUCCEEDED], None, 0)
    message = (
        f"Job entrypoint command failed with exit code {code}, last available logs "
        f"(truncated to {LOG_TAIL_CHARS:,} chars):\n{log_tail}"
    )
    return _final(record, FAILED, message, ENTRYPOINT_ERROR, code)


def start_timeout_message(record: JobRecord, timeout: float) -> str:
    """Why a job that stayed PENDING too long failed (Ray's words)."""
    message = f"Job supervisor actor failed to start within {timeout:g} seconds."
    if record.resources:
        shape = ", ".join(f"{name}={qty:g}" for name, qty in sorted(record.resources.items()))
        message += (
            f" This may be because the job entrypoint's specified resources ({shape}) aren't available on the cluster."
        )
    return message


def failed(record: JobRecord, message: str, error_type: str) -> JobRecord:
    return _final(record, FAILED, message, error_type, None)


def _final(record: JobRecord, status: str, message: str, error_type: str | None, code: int | None) -> JobRecord:
    return msgspec.structs.replace(
        record, status=status, message=message, error_type=error_type, driver_exit_code=code, end_time=now_ms()
    )


def details(record: JobRecord) -> dict[str, Any]:
    """The record as Ray's ``JobDetails`` JSON (what ``GET /api/jobs/{id}`` answers)."""
    resources = dict(record.resources)
    return {
        "type": "SUBMISSION",
        "job_id": record.job_id,
        "submission_id": record.submission_id,
        "driver_info": None,
        "status": record.status,
        "entrypoint": record.entrypoint,
        "message": record.message,
        "error_type": record.error_type,
        "start_time": record.start_time,
        "end_time": record.end_time,
        "metadata": record.metadata,
        "runtime_env": record.runtime_env,
        "driver_agent_http_address": None,
        "driver_node_id": record.driver_node_id,
        "driver_exit_code": record.driver_exit_code,
        "entrypoint_num_cpus": resources.pop("CPU", None),
        "entrypoint_num_gpus": resources.pop("GPU", None),
        "entrypoint_memory": int(resources.pop("memory")) if "memory" in resources else None,
        "entrypoint_resources": resources or None,
    }

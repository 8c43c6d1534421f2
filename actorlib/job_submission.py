"""Submit, follow and stop jobs on a cluster over its HTTP API, with Ray's names (``ray.job_submission``).

::

    from actorlib.job_submission import JobSubmissionClient, JobStatus

    client = JobSubmissionClient()          # the local cluster, or "http://HOST:8265"
    job = client.submit_job(entrypoint="python script.py", runtime_env={"working_dir": "."})
    print(client.get_job_status(job))

Every call sends the cluster token (``Authorization: Bearer``): given as
``token=``, else $ACTORLIB_TOKEN, ``token_file=``, $ACTORLIB_TOKEN_FILE, or
the session of a cluster running on this machine. Errors: ConnectionError
(nobody listens), AuthenticationError (token missing or wrong),
JobSubmissionError (a RuntimeError, like Ray's: the API refused the request).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx
import msgspec

from ._jobs._endpoint import http_address, token_for
from ._runtime_env import check_runtime_env, package_uri, zip_directory
from .exceptions import AuthenticationError, JobSubmissionError

__all__ = ["JobDetails", "JobInfo", "JobStatus", "JobSubmissionClient"]

TIMEOUT = 30.0


class JobStatus(str, enum.Enum):
    """A job's state; the last three are final."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    def __str__(self) -> str:
        return self.value

    def is_terminal(self) -> bool:
        return self in (JobStatus.STOPPED, JobStatus.SUCCEEDED, JobStatus.FAILED)


class JobDetails(msgspec.Struct, kw_only=True):
    """One job, as ``GET /api/jobs/{id}`` describes it (Ray's ``JobDetails`` fields)."""

    type: str
    status: JobStatus
    entrypoint: str
    job_id: str | None = None
    submission_id: str | None = None
    driver_info: Any = None
    message: str | None = None
    error_type: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    metadata: dict[str, str] | None = None
    runtime_env: dict[str, Any] | None = None
    driver_agent_http_address: str | None = None
    driver_node_id: str | None = None
    driver_exit_code: int | None = None
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_memory: int | None = None
    entrypoint_resources: dict[str, float] | None = None


JobInfo = JobDetails


class JobSubmissionClient:
    """A client of one cluster's jobs API (blocking calls; :meth:`tail_job_logs` is async).

    Connects on creation: raises ConnectionError if nothing answers at the address,
    AuthenticationError if the token is refused.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        token: str | None = None,
        token_file: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = TIMEOUT,
    ) -> None:
        self._address, session = http_address(address)
        self._headers = dict(headers or {})
        if not any(name.lower() == "authorization" for name in self._headers):
            found = token_for(session, token, token_file)
            if found:
                self._headers["Authorization"] = f"Bearer {found}"
        self._timeout = timeout
        from ._http._client import RetryingTransport

        self._client = httpx.Client(
            base_url=self._address, headers=self._headers, timeout=timeout, transport=RetryingTransport()
        )
        try:
            self.get_version()
        except BaseException:
            self._client.close()
            raise

    @property
    def address(self) -> str:
        return self._address

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> JobSubmissionClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- requests --------------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ConnectionError(f"Failed to connect to the actorlib cluster at address: {self._address} ({exc})") from None
        _raise_for(response)
        return response

    def get_version(self) -> str:
        """The Jobs API version the cluster speaks (Ray's, e.g. ``"4"``)."""
        return str(self._request("GET", "/api/version").json()["version"])

    def submit_job(
        self,
        *,
        entrypoint: str,
        submission_id: str | None = None,
        runtime_env: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        entrypoint_num_cpus: float | None = None,
        entrypoint_num_gpus: float | None = None,
        entrypoint_memory: int | None = None,
        entrypoint_resources: dict[str, float] | None = None,
        job_id: str | None = None,
    ) -> str:
        """Submit a shell command to run on the cluster; return its submission id at once.

        A local ``working_dir`` (or ``py_modules`` directory) is zipped, leaving out
        ``excludes``, and uploaded first unless the cluster has it already.
        Raises ValueError/TypeError for a bad runtime_env, JobSubmissionError if refused.
        """
        checked = check_runtime_env(runtime_env, where="submit_job")
        body = {
            "entrypoint": entrypoint,
            "submission_id": submission_id or job_id,
            "runtime_env": self._upload_packages(checked),
            "metadata": metadata or {},
            "entrypoint_num_cpus": entrypoint_num_cpus,
            "entrypoint_num_gpus": entrypoint_num_gpus,
            "entrypoint_memory": entrypoint_memory,
            "entrypoint_resources": entrypoint_resources,
        }
        body = {key: value for key, value in body.items() if value is not None}
        return str(self._request("POST", "/api/jobs/", json=body).json()["submission_id"])

    def _upload_packages(self, runtime_env: dict[str, Any]) -> dict[str, Any]:
        excludes = runtime_env.pop("excludes", [])
        if runtime_env.get("working_dir"):
            runtime_env["working_dir"] = self._upload(runtime_env["working_dir"], excludes, include_parent=False)
        if runtime_env.get("py_modules"):
            runtime_env["py_modules"] = [self._upload(m, excludes, include_parent=True) for m in runtime_env["py_modules"]]
        return runtime_env

    def _upload(self, location: str, excludes: list[str], *, include_parent: bool) -> str:
        if "://" in location:
            return location
        name, data = zip_directory(location, excludes=excludes, include_parent=include_parent)
        path = f"/api/packages/gcs/{name}"
        try:
            self._request("GET", path)
        except JobSubmissionError as exc:
            if exc.status != 404:
                raise
            self._request("PUT", path, content=data)
        return package_uri(name)

    def get_job_info(self, job_id: str) -> JobDetails:
        """The job's details. Raises JobSubmissionError (status 404) for an unknown id."""
        return msgspec.json.decode(self._request("GET", f"/api/jobs/{job_id}").content, type=JobDetails)

    def get_job_status(self, job_id: str) -> JobStatus:
        return self.get_job_info(job_id).status

    def list_jobs(self) -> list[JobDetails]:
        """Every job of the cluster, whoever submitted it."""
        return msgspec.json.decode(self._request("GET", "/api/jobs/").content, type=list[JobDetails])

    def get_job_logs(self, job_id: str) -> str:
        """Everything the job printed so far (stdout and stderr)."""
        return str(self._request("GET", f"/api/jobs/{job_id}/logs").json()["logs"])

    def stop_job(self, job_id: str) -> bool:
        """Ask the job to stop (SIGTERM, then SIGKILL); False if it had already finished. Returns at once."""
        return bool(self._request("POST", f"/api/jobs/{job_id}/stop").json()["stopped"])

    def delete_job(self, job_id: str) -> bool:
        """Forget a finished job. Raises JobSubmissionError if it still runs (stop it first)."""
        return bool(self._request("DELETE", f"/api/jobs/{job_id}").json()["deleted"])

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        """The job's output from the start, chunk by chunk as it is written, until the job ends.

        An async iterator (asyncio or Trio). Raises JobSubmissionError if the job does not
        exist or the connection breaks before the job ended.
        """
        from httpx_ws import WebSocketDisconnect, WebSocketUpgradeError, aconnect_ws

        url = f"{self._address}/api/jobs/{job_id}/logs/tail"
        async with httpx.AsyncClient(headers=self._headers, timeout=self._timeout) as client:
            try:
                async with aconnect_ws(url, client, keepalive_ping_interval_seconds=None) as ws:
                    while True:
                        try:
                            yield await ws.receive_text()
                        except WebSocketDisconnect as exc:
                            if exc.code != 1000:
                                raise JobSubmissionError(f"the log stream of job {job_id} broke (close code {exc.code})") from None
                            return
            except WebSocketUpgradeError as exc:
                _raise_for(exc.response)
                raise
            except httpx.TransportError as exc:
                raise ConnectionError(f"Failed to connect to the actorlib cluster at address: {self._address} ({exc})") from None


def _raise_for(response: httpx.Response) -> None:
    if response.status_code == 200:
        return
    try:
        text = response.text
    except httpx.ResponseNotRead:
        text = response.read().decode(errors="replace")
    if response.status_code in (401, 403):
        raise AuthenticationError(f"the cluster refused this client ({response.status_code}): {text}")
    raise JobSubmissionError(f"Request failed with status code {response.status_code}: {text}", response.status_code)

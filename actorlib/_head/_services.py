"""The head's services beside the core: runtime_env packages, the job manager, the HTTP API
and the dashboard on it.

They are children of the head's root supervisor (``jobs``, ``http``) and answer
their own wire messages through :attr:`HeadService.handlers`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import trio

import supervisors

from .._jobs import JobManager, JobRecord, jobs_spec
from .._state import JobState
from .._node import NodeConfig
from .._runtime_env import DEFAULT_MAX_SIZE, PackageStore, RuntimeEnvError, UnsafePackage, check_name, check_zip
from .._wire import (
    Channel, Done, EntrypointState, GetPackage, NodeView, PackageReply, PutPackage, RegisterDriver, new_token, read_token,
    write_token,
)
from ._service import HeadService
from ._state import StateStore


class HeadServices:
    """Packages, jobs and (if configured) the HTTP server of one head process."""

    def __init__(self, config: NodeConfig, token: str, head: HeadService, state: StateStore) -> None:
        session = Path(config.session_dir)
        self.packages = PackageStore(session / "packages")
        self.jobs = JobManager(
            session_dir=session, state=state, packages=self.packages, nodes=head.registry, token=token,
            node_id=config.node_id, recovery_grace=head.recovery_grace,
        )  # fmt: skip
        head.handlers[GetPackage] = self._get_package
        head.handlers[PutPackage] = self._put_package
        head.on_driver = self._driver_registered
        drivers = head.inspect.jobs
        head.inspect.jobs = lambda: joined_jobs(drivers(), self.jobs.list_jobs())
        head.on_node_joined.append(lambda node, hello: self.jobs.node_joined(node.node_id, hello.entrypoints))
        head.node_handlers[EntrypointState] = lambda node, state: self.jobs.entrypoint_reported(node.node_id, state)
        head.on_node_died.append(self.jobs.node_died)
        head.job_demands = self.jobs.waiting_shapes
        self.server: Any = None
        self.dashboard: Any = None
        if config.dashboard_port >= 0:
            from .._dashboard import Dashboard  # a head without HTTP never imports Starlette
            from .._http import HttpServer, JobsApi, create_app

            metrics_token = _metrics_token(session / "metrics_token")
            self.dashboard = dashboard = Dashboard(token, head.inspect.result, metrics_token=metrics_token)

            def make_app() -> Any:
                api = JobsApi(self.jobs, self.packages, max_package_size=DEFAULT_MAX_SIZE, version=_version())
                return create_app(token, [api.routes(), dashboard.routes()], **dashboard.app_options())

            self.server = HttpServer(make_app, config.dashboard_host, config.dashboard_port)

    def children(self) -> list[supervisors.ChildSpec]:
        specs = [jobs_spec(self.jobs)]
        if self.server is not None:
            from .._http import http_spec

            specs.append(http_spec(self.server))
            specs += self.dashboard.children()
        return specs

    def ready_info(self) -> dict[str, str]:
        return {"dashboard": self.server.url} if self.server is not None else {}

    def _driver_registered(self, message: RegisterDriver, job_id: str, node: NodeView) -> None:
        if message.submission_id:
            self.jobs.driver_registered(message.submission_id, job_id, node.node_id.hex())

    async def _get_package(self, channel: Channel, message: GetPackage) -> None:
        try:
            check_name(message.name)
            path = self.packages.path(message.name)
            found = path.is_file()
            data = await trio.to_thread.run_sync(path.read_bytes) if found and message.data else b""
            reply = PackageReply(req=message.req, found=found, data=data)
        except (RuntimeEnvError, OSError) as exc:
            reply = PackageReply(req=message.req, found=False, error=str(exc))
        if not channel.closed:
            channel.send_nowait(reply)

    async def _put_package(self, channel: Channel, message: PutPackage) -> None:
        error = ""
        try:
            check_name(message.name)
            if len(message.data) > DEFAULT_MAX_SIZE:
                raise RuntimeEnvError(f"package {message.name} is over the {DEFAULT_MAX_SIZE:,}-byte limit")
            await trio.to_thread.run_sync(check_zip, message.data)
            await trio.to_thread.run_sync(self.packages.put, message.name, message.data)
        except (RuntimeEnvError, UnsafePackage, OSError) as exc:
            error = str(exc)
        if not channel.closed:
            channel.send_nowait(Done(req=message.req, error=error))


def joined_jobs(drivers: list[JobState], records: list[JobRecord]) -> list[JobState]:
    """Registered drivers and submitted jobs as one listing, as ``ray list jobs`` shows both:
    a submitted job whose entrypoint called init() is one row (type SUBMISSION, its status);
    one that never did (or not yet) has no driver job id. Newest first."""
    by_job_id = {record.job_id: record for record in records if record.job_id}
    rows = []
    for driver in drivers:
        record = by_job_id.pop(driver.job_id, None)
        rows.append(driver if record is None else _submission(record, driver))
    rows += [_submission(record, None) for record in records if not record.job_id or record.job_id in by_job_id]
    return sorted(rows, key=lambda row: -row.start_time)


def _submission(record: JobRecord, driver: JobState | None) -> JobState:
    start = driver.start_time if driver is not None else record.start_time / 1000
    return JobState(
        job_id=record.job_id or "", type="SUBMISSION", status=record.status, entrypoint=record.entrypoint,
        driver_pid=record.driver_pid or (driver.driver_pid if driver else 0), driver_ip=driver.driver_ip if driver else "",
        namespace=driver.namespace if driver else "", start_time=start,
        end_time=record.end_time / 1000 if record.end_time is not None else None, submission_id=record.submission_id,
        message=record.message, error_type=record.error_type, driver_exit_code=record.driver_exit_code,
    )  # fmt: skip


def _metrics_token(path: Path) -> str:
    """The read-only token for ``/metrics`` scrapers: the session's, made on first use (0600)."""
    try:
        return read_token(path)
    except (FileNotFoundError, ValueError):
        token = new_token()
        write_token(path, token)
        return token


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version  # ~6 ms: only heads with HTTP pay

    try:
        return version("actorlib")
    except PackageNotFoundError:
        return "0"

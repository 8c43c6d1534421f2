"""The Jobs REST API, as Ray's clients call it: version, packages, jobs, logs, log tail, stop, delete.

See docs/jobs.md for the reference; every error is a plain-text 4xx naming the problem.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec
import trio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from .._jobs import JobError, JobManager, JobSubmitRequest, details
from .._runtime_env import PackageStore, RuntimeEnvError, UnsafePackage, check_name, check_zip
from ._body import HttpError, read_body
from ._guard import deny_websocket

API_VERSION = "4"  # Ray's Jobs API version: its clients need an int > 0 to tail logs
RAY_VERSION = "2.60.0"  # the Ray release whose Jobs API this follows (its clients check it)
MAX_JSON_BODY = 1 << 20

Endpoint = Callable[[Request], Awaitable[Response]]


def _answers_errors(endpoint: Endpoint) -> Endpoint:
    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except HttpError as exc:
            return exc.response()
        except JobError as exc:
            return HttpError(exc.status, exc.message).response()

    wrapped.__name__ = endpoint.__name__
    return wrapped


class JobsApi:
    """The routes, over one JobManager and one PackageStore."""

    def __init__(self, manager: JobManager, packages: PackageStore, *, max_package_size: int, version: str) -> None:
        self.manager = manager
        self.packages = packages
        self.max_package_size = max_package_size
        self.version = version

    def routes(self) -> list[BaseRoute]:
        e = _answers_errors
        return [
            Route("/api/version", e(self.get_version), methods=["GET"]),
            Route("/api/packages/{protocol}/{name}", e(self.package), methods=["GET", "PUT"]),
            Route("/api/jobs/", e(self.jobs), methods=["GET", "POST"]),
            Route("/api/jobs", e(self.jobs), methods=["GET", "POST"]),
            Route("/api/jobs/{job_id}", e(self.job), methods=["GET", "DELETE"]),
            Route("/api/jobs/{job_id}/logs", e(self.logs), methods=["GET"]),
            Route("/api/jobs/{job_id}/stop", e(self.stop), methods=["POST"]),
            WebSocketRoute("/api/jobs/{job_id}/logs/tail", self.tail),
        ]

    async def get_version(self, request: Request) -> Response:
        return JSONResponse(
            {"version": API_VERSION, "ray_version": RAY_VERSION, "ray_commit": "", "session_name": "", "actorlib_version": self.version}
        )

    # ---- packages ---------------------------------------------------------------------------

    async def package(self, request: Request) -> Response:
        protocol, name = request.path_params["protocol"], request.path_params["name"]
        if protocol != "gcs":
            raise HttpError(400, f"unsupported package protocol {protocol!r} (only gcs)")
        try:
            check_name(name)
        except RuntimeEnvError as exc:
            raise HttpError(400, str(exc)) from None
        if request.method == "GET":
            if await trio.to_thread.run_sync(self.packages.has, name):
                return Response(status_code=200)
            raise HttpError(404, f"Package gcs://{name} does not exist")
        data = await read_body(request, self.max_package_size, f"package {name}")
        try:
            await trio.to_thread.run_sync(check_zip, data)
        except UnsafePackage as exc:
            raise HttpError(400, f"package {name} refused: {exc}") from None
        await trio.to_thread.run_sync(self.packages.put, name, data)
        return Response(status_code=200)

    # ---- jobs -------------------------------------------------------------------------------------

    async def jobs(self, request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse([details(record) for record in self.manager.list_jobs()])
        body = await read_body(request, MAX_JSON_BODY, "a job submission")
        try:
            submit = msgspec.json.decode(body, type=JobSubmitRequest)
        except msgspec.ValidationError as exc:
            raise HttpError(400, f"invalid job submission: {exc}") from None
        except msgspec.DecodeError as exc:
            raise HttpError(400, f"invalid job submission: the body is not JSON ({exc})") from None
        sid = self.manager.submit(submit)
        return JSONResponse({"job_id": sid, "submission_id": sid})

    async def job(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if request.method == "DELETE":
            return JSONResponse({"deleted": self.manager.delete(job_id)})
        record = self.manager.get(job_id)
        if record is None:
            raise HttpError(404, f"Job {job_id} does not exist")
        return JSONResponse(details(record))

    async def logs(self, request: Request) -> Response:
        return JSONResponse({"logs": await self.manager.logs(request.path_params["job_id"])})

    async def stop(self, request: Request) -> Response:
        return JSONResponse({"stopped": self.manager.stop(request.path_params["job_id"])})

    async def tail(self, websocket: WebSocket) -> None:
        job_id = websocket.path_params["job_id"]
        if self.manager.get(job_id) is None:
            await deny_websocket(websocket.scope, websocket.receive, websocket.send, 404, f"Job {job_id} does not exist")
            return
        await websocket.accept()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_cancel_on_disconnect, websocket, nursery.cancel_scope)
                await self.manager.follow(job_id, websocket.send_text)
                nursery.cancel_scope.cancel()
            await websocket.close(1000)
        except (WebSocketDisconnect, JobError):
            pass  # the client went away, or the job was deleted meanwhile


async def _cancel_on_disconnect(websocket: WebSocket, scope: trio.CancelScope) -> None:
    # Clients never send data frames; a receive returns only when they close.
    try:
        while True:
            message: Any = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                break
    finally:
        scope.cancel()

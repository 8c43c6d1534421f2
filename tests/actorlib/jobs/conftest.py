"""Jobs tests: an in-process job manager behind a real HTTP server on loopback, and helpers."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import warnings
import zipfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
import trio

import supervisors
from actorlib import _ids
from actorlib._head._registry import Registry
from actorlib._head._state import MemoryState
from actorlib._http import HttpServer, JobsApi, create_app, http_spec
from actorlib._jobs import JobManager, jobs_spec
from actorlib._node import NodeConfig, node_spec
from actorlib._runtime_env import PackageStore

TOKEN = "test-token-0123456789"
MAX_PACKAGE = 64 * 1024


@dataclass
class Api:
    """A job manager and the head's node in this test's Trio loop, its HTTP server, and a client."""

    manager: JobManager
    server: HttpServer
    session: Path
    client: httpx.AsyncClient
    state: "FlakyState"
    root: supervisors.Supervisor

    @property
    def url(self) -> str:
        return self.server.url

    async def wait_status(self, sid: str, *statuses: str, timeout: float = 30.0) -> dict:
        with trio.fail_after(timeout):
            while True:
                job = (await self.client.get(f"/api/jobs/{sid}")).json()
                if job["status"] in statuses:
                    return job
                await trio.sleep(0.05)


class FlakyState(MemoryState):
    """The head's in-memory state store, which can be told to fail its next writes (a full disk)."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 0

    def save_job(self, submission_id: str, record: bytes) -> None:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("disk I/O error (injected by the test)")
        super().save_job(submission_id, record)


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The head's job services over its own node (a real NodeService subtree with 2 CPUs), in-process."""
    session = tmp_path / "session"
    for sub in ("logs", "sockets"):
        (session / sub).mkdir(parents=True)
    (session / "token").write_text(TOKEN)
    config = NodeConfig(
        session_dir=str(session), node_id=_ids.unique_id().hex(), resources={"CPU": 2.0},
        object_store_memory=64 * 2**20, head_address="unix:/nonexistent/head.sock",
    )  # fmt: skip
    registry = Registry()
    packages = PackageStore(session / "packages")
    state = FlakyState()
    manager = JobManager(
        session_dir=session, state=state, packages=packages, nodes=registry, token=TOKEN, node_id=config.node_id,
        stop_timeout=1.0,
    )

    def make_app():
        return create_app(TOKEN, [JobsApi(manager, packages, max_package_size=MAX_PACKAGE, version="test").routes()])

    server = HttpServer(make_app, "127.0.0.1", 0)
    children = [node_spec(config, TOKEN, registry), jobs_spec(manager), http_spec(server)]
    async with supervisors.open_supervisor(children, id="test-head") as root:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
            yield Api(manager, server, session, client, state, root)


def zip_of(members: dict[str, bytes], *, symlinks: dict[str, str] | None = None) -> bytes:
    """A zip with these file members (names taken as given: they may be hostile) and symlinks."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Duplicate name": on purpose
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o100644 << 16
            archive.writestr(info, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o120777 << 16
            archive.writestr(info, target)
    return buffer.getvalue()


def gone(pids: list[int]) -> bool:
    """Whether none of these processes exists any more (zombies count as existing)."""
    return not any(psutil.pid_exists(pid) for pid in pids)


async def wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    with trio.fail_after(timeout):
        while not gone(pids):
            await trio.sleep(0.02)


# ---- a standalone cluster started with the CLI (head + nodes on 127.0.0.x) -------------------------


def cluster_url(multi) -> str:
    """The head's HTTP API, from its ready file."""
    import json

    (head,) = Path(multi.tmp).glob("actorlib-*/session_2*/head.json")
    return json.loads(head.read_text())["dashboard"]


def cluster_token(multi) -> str:
    return Path(multi.token_file).read_text().strip()


@contextlib.contextmanager
def jobs_cluster(nodes: list[dict], head_cpus: float) -> Iterator:
    """A CLI-started cluster (``MultiNode``) with ``.url`` (its HTTP API) and ``.client`` (our SDK)."""
    from actorlib.job_submission import JobSubmissionClient

    from ..multinode.conftest import MultiNode

    multi = MultiNode(nodes, head_cpus=head_cpus)
    multi.url = cluster_url(multi)
    multi.client = JobSubmissionClient(multi.url, token=cluster_token(multi))
    try:
        yield multi
    finally:
        multi.client.close()
        multi.stop()

"""Dashboard tests: one 3-node loopback cluster started with the CLI (head 127.0.0.1, nodes 127.0.0.2
and 127.0.0.3), this test process its driver, and HTTP clients with and without credentials."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from actorlib._http._client import RetryingTransport

from ..multinode.conftest import MultiNode


class Dash(MultiNode):
    url: str
    token: str
    metrics_token: str

    def client(self, token: str | None = None, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        # Retrying as browsers do: a connection the server closes as a request goes out is not what these tests check.
        return httpx.Client(base_url=self.url, headers=headers, timeout=30, transport=RetryingTransport(), **kwargs)

    def get(self, path: str, **kwargs) -> httpx.Response:
        with self.client(self.token) as client:
            return client.get(path, **kwargs)


@pytest.fixture(scope="package")
def dash() -> Iterator[Dash]:
    multi = Dash(
        [
            {"ip": "127.0.0.2", "cpus": 1, "resources": {"ssd": 1}},
            {"ip": "127.0.0.3", "cpus": 2, "resources": {"gpu_like": 2}},
        ],
        head_cpus=1,
    )
    with multi.connected():
        session = Path(multi.token_file).parent
        multi.url = json.loads((session / "head.json").read_text())["dashboard"]
        multi.token = (session / "token").read_text().strip()
        multi.metrics_token = (session / "metrics_token").read_text().strip()
        yield multi

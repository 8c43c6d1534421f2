"""The inspection commands fail with one clear line, not a traceback (no cluster needed)."""

from __future__ import annotations

import socket

import pytest
from click.testing import CliRunner

from actorlib._cli import main


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # nothing listens there once the probe closes


@pytest.mark.parametrize(
    "args",
    [["tree"], ["list", "actors"], ["summary", "tasks"], ["get", "actor", "ab"], ["logs"], ["timeline", "-o", "t.json"], ["status"]],
)
def test_an_unreachable_head_is_one_line(args: list[str], monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("ACTORLIB_TOKEN", "x" * 64)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [*args, "--address", f"127.0.0.1:{closed_port()}"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and "connect" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tree", "--watch", "--json"], "--watch and --json do not go together"),
        (["list", "actors", "--filter", "state"], "expected key=value"),
        (["list", "gizmos"], "Invalid value"),
        (["logs", "--worker", "12"], "--worker and --file need --node"),
    ],
)
def test_bad_usage_is_named(args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and message in result.output

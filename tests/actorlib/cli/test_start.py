"""``actorlib start`` failing: a clear error, and nothing left running."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from actorlib._wire import new_token, write_token

from ..integration.conftest import poll, processes_mentioning


def test_a_head_on_a_taken_port_says_so_and_leaves_nothing(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        tmp = tempfile.mkdtemp(prefix="st-", dir="/tmp")
        result = subprocess.run(
            [sys.executable, "-m", "actorlib", "start", "--head", "--port", str(port), "--num-cpus", "1"],
            capture_output=True, text=True, timeout=120, env={**os.environ, "ACTORLIB_TMPDIR": tmp},
        )  # fmt: skip
    assert result.returncode == 1
    assert "the head failed to start: OSError: [Errno 98] Address already in use" in result.stderr
    assert "choose one with --port" in result.stderr and "Traceback" not in result.stderr
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
    assert not processes_mentioning(tmp)  # the daemon and head, which carry the session path in their config
    shutil.rmtree(tmp, ignore_errors=True)


def test_a_head_whose_http_port_is_taken_says_which_option_to_change(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            head_port = probe.getsockname()[1]
        tmp = tempfile.mkdtemp(prefix="st-", dir="/tmp")
        result = subprocess.run(
            [sys.executable, "-m", "actorlib", "start", "--head", "--port", str(head_port), "--num-cpus", "1",
             "--dashboard-port", str(port)],
            capture_output=True, text=True, timeout=120, env={**os.environ, "ACTORLIB_TMPDIR": tmp},
        )  # fmt: skip
    assert result.returncode == 1
    assert f"the HTTP API cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "--dashboard-port" in result.stderr and "Traceback" not in result.stderr
    assert not processes_mentioning(tmp)
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.mark.parametrize("token", ["", "hunter2", "x" * 31])
def test_a_head_refuses_a_token_anyone_could_guess_and_starts_nothing(tmp_path, token):
    # An empty Kubernetes Secret or a typed password: a head serving it would let anyone in.
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    tmp = tempfile.mkdtemp(prefix="st-", dir="/tmp")
    result = subprocess.run(
        [sys.executable, "-m", "actorlib", "start", "--head", "--port", "0", "--num-cpus", "1", "--token-file", str(token_file)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "ACTORLIB_TMPDIR": tmp},
    )  # fmt: skip
    said = " ".join(result.stderr.split())
    assert result.returncode == 2, result.stderr
    assert "Invalid value for" in said and "--token-file" in said, said
    assert f"the cluster token in {token_file} is {len(token)} characters" in said, said
    assert "at least 32" in said and "secrets.token_hex(32)" in said and "Traceback" not in said
    assert not processes_mentioning(tmp)
    assert not list(Path(tmp).glob("actorlib-*/session_*")), "a session was made for a head that never started"
    shutil.rmtree(tmp, ignore_errors=True)


DRIVER = """
import json, actorlib
actorlib.init(address="auto")
labels = actorlib.remote(lambda: actorlib.get_runtime_context().get_node_labels())
print(json.dumps([actorlib.nodes()[0]["Labels"], actorlib.get(labels.remote())]))
"""


def test_a_head_on_port_0_prints_the_port_it_was_given_and_its_labels_reach_tasks():
    # The join and driver commands it prints must work as printed: with a port of 0, not ":0".
    tmp = tempfile.mkdtemp(prefix="st-", dir="/tmp")
    env = {**os.environ, "ACTORLIB_TMPDIR": tmp}
    try:
        result = subprocess.run(
            [sys.executable, "-m", "actorlib", "start", "--head", "--port", "0", "--num-cpus", "1", "--dashboard-port", "0",
             "--labels", '{"zone": "a"}'],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        info = json.loads(next(Path(tmp).glob("actorlib-*/session_*/head.json")).read_text())
        bound = next(part for part in info["address"].split(";") if not part.startswith("unix:"))
        assert not bound.endswith(":0")
        assert f"address:    {bound}\n" in result.stdout, result.stdout
        assert f"actorlib start --address {bound} --token-file" in result.stdout
        assert f'actorlib.init(address="{bound}")' in result.stdout
        driver = subprocess.run([sys.executable, "-c", DRIVER], capture_output=True, text=True, timeout=120, env=env)
        assert driver.returncode == 0, driver.stderr
        assert json.loads(driver.stdout.splitlines()[-1]) == [{"zone": "a"}, {"zone": "a"}]
    finally:
        subprocess.run([sys.executable, "-m", "actorlib", "stop"], capture_output=True, timeout=120, env=env)
    deadline = time.monotonic() + 30
    while processes_mentioning(tmp) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_mentioning(tmp)
    shutil.rmtree(tmp, ignore_errors=True)


def test_a_node_started_without_a_token_file_keeps_its_clusters_token_when_another_head_starts(monkeypatch):
    """Regression: ``actorlib start --address`` without --token-file found the head's token
    through ``session_latest``, a link the next head started on the machine moves, and kept
    that path for itself and its workers: each worker, reading the token as it starts, got
    the newer cluster's and its node refused it ('invalid cluster token'), so no actor
    started there (the cluster guide's test, beside other clusters in the same directory)."""
    from actorlib._cli._start import _local_token
    from actorlib._session import sessions_root
    from actorlib._wire import read_token

    tmp = tempfile.mkdtemp(prefix="st-", dir="/tmp")  # short: sessions stay in it
    monkeypatch.setenv("ACTORLIB_TMPDIR", tmp)
    monkeypatch.delenv("ACTORLIB_TOKEN_FILE", raising=False)
    root = sessions_root()
    assert str(root).startswith(tmp)
    titled = "import setproctitle, time; setproctitle.setproctitle('actorlib::head'); time.sleep(120)"
    heads = [subprocess.Popen([sys.executable, "-c", titled]) for _ in range(2)]  # what the sessions' head.json name
    try:
        for head in heads:
            poll(lambda: psutil.Process(head.pid).cmdline()[:1] == ["actorlib::head"], timeout=30)

        def start_head(name: str, pid: int, port: int) -> Path:
            session = root / name
            (session / "sockets").mkdir(parents=True)
            write_token(session / "token", new_token())
            (session / "head.json").write_text(json.dumps({"pid": pid, "address": f"unix:{session}/sockets/head.sock;127.0.0.1:{port}"}))
            latest = root / "session_latest"
            latest.unlink(missing_ok=True)
            latest.symlink_to(name)  # as a head's new session does
            return session

        ours = start_head("session_2026-01-01_00-00-00_000000_1", heads[0].pid, 6380)
        token_file = _local_token("127.0.0.1:6380")  # what the node and its workers read, for its whole life
        start_head("session_2026-01-01_00-00-01_000000_2", heads[1].pid, 6381)  # another cluster's head
        same = read_token(Path(token_file)) == read_token(ours / "token")  # (tokens are never shown)
        assert same, f"{token_file} holds another cluster's token now"
    finally:
        for head in heads:
            head.kill()
            head.wait()
        shutil.rmtree(tmp, ignore_errors=True)

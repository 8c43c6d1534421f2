"""Jobs on a real cluster started with the CLI: the SDK, the CLI, runtime_env across nodes, the job's
work cleaned up, the HTTP server restarting after a crash, and jobs kept across a head restart."""

from __future__ import annotations

import ctypes
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import psutil
import pytest
import trio

from actorlib.exceptions import AuthenticationError, JobSubmissionError
from actorlib.job_submission import JobStatus, JobSubmissionClient

from ..integration.conftest import poll, wait_gone
from .conftest import cluster_token, cluster_url, jobs_cluster

PY = sys.executable
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    """Head (2 CPUs) + a node on 127.0.0.2 with the custom resource "remote"."""
    with jobs_cluster([{"ip": "127.0.0.2", "cpus": 1, "resources": {"remote": 1}}], head_cpus=2) as multi:
        yield multi


def wait_done(client: JobSubmissionClient, sid: str, timeout: float = 60) -> JobStatus:
    return poll(lambda: (s := client.get_job_status(sid)).is_terminal() and s, timeout=timeout)


def test_a_working_dir_job_runs_its_helper_module_in_tasks_on_another_node(cluster, tmp_path):
    project = tmp_path / "project"
    (project / "logs").mkdir(parents=True)
    (project / "helper.py").write_text("def where():\n    import os\n    return os.environ['ACTORLIB_NODE_IP'], os.getcwd()\n")
    (project / "logs" / "big.log").write_text("x" * 1000)
    (project / "main.py").write_text(textwrap.dedent("""
        import json, os, actorlib
        actorlib.init()

        @actorlib.remote(resources={"remote": 1})
        def remote_where():
            import helper
            return helper.where(), os.path.exists("logs")

        import helper
        print("RESULT", json.dumps({"task": actorlib.get(remote_where.remote()), "driver_cwd": os.getcwd(),
                                    "env": os.environ.get("GREETING")}))
    """))
    client = cluster.client
    sid = client.submit_job(
        entrypoint="python main.py", runtime_env={"working_dir": str(project), "excludes": ["logs/"], "env_vars": {"GREETING": "hi"}}
    )
    assert wait_done(client, sid) == JobStatus.SUCCEEDED, client.get_job_logs(sid)
    result = json.loads(client.get_job_logs(sid).split("RESULT ", 1)[1])
    (ip, task_cwd), has_logs = result["task"]
    assert ip == "127.0.0.2" and not has_logs  # the excluded directory was not uploaded
    assert Path(task_cwd).name == Path(result["driver_cwd"]).name and Path(task_cwd).name.startswith("_ray_pkg_")
    assert task_cwd != result["driver_cwd"]  # each node unpacked it into its own cache
    assert result["env"] == "hi"
    info = client.get_job_info(sid)
    assert info.job_id and info.driver_node_id  # its driver registered as this job
    listed = cluster.cli("list", "jobs", "--address", cluster.address, "--json", env={**cluster.env, "ACTORLIB_TOKEN_FILE": cluster.token_file})
    rows = [row for row in json.loads(listed.stdout) if row["submission_id"] == sid]
    assert [(row["type"], row["job_id"], row["status"]) for row in rows] == [("SUBMISSION", info.job_id, "SUCCEEDED")]
    assert info.runtime_env["working_dir"].startswith("gcs://_ray_pkg_")


def test_what_a_job_owned_dies_with_it_and_detached_actors_stay(cluster, tmp_path):
    pids = tmp_path / "pids.json"
    script = tmp_path / "owner.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, actorlib
        actorlib.init(namespace="jobs-test")

        @actorlib.remote
        class Holder:
            def pid(self):
                return os.getpid()

        owned = Holder.remote()
        kept = Holder.options(name="kept", lifetime="detached").remote()
        json.dump({{"owned": actorlib.get(owned.pid.remote()), "kept": actorlib.get(kept.pid.remote())}}, open({str(pids)!r}, "w"))
    """))
    client = cluster.client
    sid = client.submit_job(entrypoint=f"{PY} {script}")
    assert wait_done(client, sid) == JobStatus.SUCCEEDED, client.get_job_logs(sid)
    actors = json.loads(pids.read_text())
    assert wait_gone([actors["owned"]]) == []
    assert psutil.pid_exists(actors["kept"])
    killer = client.submit_job(
        entrypoint=f"{PY} -c \"import actorlib; actorlib.init(namespace='jobs-test'); actorlib.kill(actorlib.get_actor('kept'))\""
    )
    assert wait_done(client, killer) == JobStatus.SUCCEEDED, client.get_job_logs(killer)
    assert wait_gone([actors["kept"]]) == []


def test_the_sdk_follows_logs_and_stops_a_job(cluster, tmp_path):
    client = cluster.client
    code = "import time\nfor i in range(100):\n    print('tick', i, flush=True); time.sleep(0.1)"
    sid = client.submit_job(entrypoint=f"{PY} -c {shlex.quote(code)}", submission_id="sdk-follow", metadata={"who": "sdk"})

    async def first_ticks() -> str:
        seen = ""
        async for chunk in client.tail_job_logs(sid):
            seen += chunk
            if "tick 2\n" in seen and "Stopping job" not in seen:
                assert client.stop_job(sid) is True
        return seen

    text = trio.run(first_ticks)  # ends when the stopped job has ended
    assert "tick 2\n" in text and "tick 99" not in text
    assert client.get_job_status(sid) == JobStatus.STOPPED
    assert client.stop_job(sid) is False
    assert [j.metadata for j in client.list_jobs() if j.submission_id == sid] == [{"who": "sdk"}]
    with pytest.raises(JobSubmissionError, match="already exists") as duplicate:
        client.submit_job(entrypoint="true", submission_id="sdk-follow")
    assert duplicate.value.status == 400
    assert client.delete_job(sid) is True
    with pytest.raises(JobSubmissionError, match="does not exist") as missing:
        client.get_job_info(sid)
    assert missing.value.status == 404
    with pytest.raises(AuthenticationError):
        JobSubmissionClient(cluster.url, token="wrong")
    with pytest.raises(ValueError, match="'pip'"):
        client.submit_job(entrypoint="true", runtime_env={"pip": ["requests"]})


def cli(cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**cluster.env, "ACTORLIB_TOKEN_FILE": cluster.token_file}
    result = subprocess.run([PY, "-m", "actorlib", "job", *args], capture_output=True, text=True, timeout=120, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"actorlib job {' '.join(args)}: {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def test_the_cli_submits_follows_and_reports(cluster):
    ok = cli(cluster, "submit", "--address", cluster.url, "--submission-id", "cli-ok", "--", PY, "-c", "print('from the cli')")
    assert "from the cli\n" in ok.stdout and "Job 'cli-ok' succeeded" in ok.stdout
    bad = cli(cluster, "submit", "--submission-id", "cli-bad", "--", "sh", "-c", "echo oops >&2; exit 7", check=False)
    assert bad.returncode == 1 and "Job 'cli-bad' failed" in bad.stdout and "exit code 7" in bad.stdout and "oops" in bad.stdout
    assert "Job 'cli-ok' succeeded" in cli(cluster, "status", "cli-ok").stdout
    assert cli(cluster, "logs", "cli-ok").stdout.endswith("from the cli\n")
    listed = json.loads(cli(cluster, "list", "--json").stdout)
    assert {"cli-ok": "SUCCEEDED", "cli-bad": "FAILED"}.items() <= {j["submission_id"]: j["status"] for j in listed}.items()
    assert "cli-ok" in cli(cluster, "list").stdout
    started = cli(cluster, "submit", "--no-wait", "--submission-id", "cli-sleep", "--", "sleep", "60")
    assert started.stdout.strip() == "cli-sleep"
    poll(lambda: cluster.client.get_job_status("cli-sleep") == JobStatus.RUNNING, timeout=30)
    assert "Job 'cli-sleep' was stopped" in cli(cluster, "stop", "cli-sleep").stdout
    assert "deleted" in cli(cluster, "delete", "cli-sleep").stdout
    gone = cli(cluster, "status", "cli-sleep", check=False)
    assert gone.returncode == 1 and "Job cli-sleep does not exist" in gone.stderr and "Traceback" not in gone.stderr
    refused = cli(cluster, "submit", "--runtime-env-json", '{"conda": "x"}', "--", "true", check=False)
    assert refused.returncode == 1 and "'conda' is not supported" in refused.stderr


def _steal_fd(pid: int, fd: int) -> int:
    """A copy of another process's file descriptor (pidfd_getfd)."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        copied = libc.syscall(438, pidfd, fd, 0)  # SYS_pidfd_getfd
    finally:
        os.close(pidfd)
    assert copied >= 0, f"pidfd_getfd failed: {os.strerror(ctypes.get_errno())}"
    return copied


def test_the_http_server_crashes_and_comes_back_while_the_head_keeps_running(cluster):
    (head,) = cluster._ready_pids("head.json")
    port = int(cluster.url.rsplit(":", 1)[1])
    (listener,) = [c for c in psutil.Process(head).net_connections("tcp") if c.status == "LISTEN" and c.laddr.port == port]
    # Shut the server's listening socket down under it: its accept loop fails and the task crashes.
    sock = socket.socket(fileno=_steal_fd(head, listener.fd))
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
    err = next(Path(cluster.tmp).glob("actorlib-*/session_2*/logs/head.err"))
    poll(lambda: err.read_text().count(f"Running on {cluster.url}") >= 2, timeout=30)
    poll(lambda: _answers(cluster.url), timeout=30)
    assert cluster._ready_pids("head.json") == [head] and psutil.pid_exists(head)
    assert cluster.client.get_version() == "4"


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/version").status_code == 401
    except httpx.TransportError:
        return False


def test_jobs_survive_a_head_restart_and_the_running_one_is_failed_with_a_reason(cluster, tmp_path):
    client = cluster.client
    done = client.submit_job(entrypoint="echo before the restart", submission_id="before")
    assert wait_done(client, done) == JobStatus.SUCCEEDED
    pid_file = tmp_path / "pid"
    running = client.submit_job(entrypoint=f"echo $$ > {pid_file}; exec sleep 300", submission_id="during")
    poll(lambda: pid_file.exists() and pid_file.read_text().strip(), timeout=30)
    sleeper = int(pid_file.read_text())
    (head,) = cluster._ready_pids("head.json")
    os.kill(head, signal.SIGKILL)
    assert wait_gone([sleeper]) == []  # the entrypoint died with its head, at once
    poll(lambda: cluster._ready_pids("head.json") and cluster._ready_pids("head.json")[0] != head, timeout=60)
    fresh = JobSubmissionClient(cluster_url(cluster), token=cluster_token(cluster))
    try:
        assert fresh.get_job_status("before") == JobStatus.SUCCEEDED
        assert fresh.get_job_logs("before").endswith("before the restart\n")
        failed = fresh.get_job_info(running)
        assert failed.status == JobStatus.FAILED and failed.error_type == "JOB_SUPERVISOR_ACTOR_DIED"
        assert "the head restarted" in failed.message and failed.end_time
        assert fresh.get_job_status(fresh.submit_job(entrypoint="true")) in (JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUCCEEDED)
    finally:
        fresh.close()

"""Job entrypoints on other nodes of a real cluster (head + nodes on 127.0.0.x, started with the CLI):
placed by their entrypoint resources, supervised by that node, logs read through the head, stopped
with their whole process tree, waiting PENDING for busy resources, and FAILED when their node dies."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest
import trio

from actorlib.job_submission import JobStatus, JobSubmissionClient

from ..integration.conftest import poll, wait_gone
from ..multinode.conftest import MultiNode
from .conftest import cluster_token, cluster_url, jobs_cluster

PY = sys.executable
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    """Head (1 CPU) + a node on 127.0.0.2 with the custom resource "x" (1 of it)."""
    with jobs_cluster([{"ip": "127.0.0.2", "cpus": 1, "resources": {"x": 1}}], head_cpus=1) as multi:
        yield multi


def node_session(multi: MultiNode, ip: str) -> Path:
    """The session directory of the node process on ``ip``."""
    pid = multi.node_pids[ip]
    (session,) = [p.parent for p in Path(multi.tmp).glob("actorlib-*/session_2*/node.json") if json.loads(p.read_text())["pid"] == pid]
    return session


def node_id(multi: MultiNode, ip: str) -> str:
    return json.loads((node_session(multi, ip) / "node.json").read_text())["node_id"]


def head_session(multi: MultiNode) -> Path:
    (head,) = Path(multi.tmp).glob("actorlib-*/session_2*/head.json")
    return head.parent


def wait_status(client: JobSubmissionClient, sid: str, *statuses: JobStatus, timeout: float = 60) -> JobStatus:
    return poll(lambda: (s := client.get_job_status(sid)) in statuses and s, timeout=timeout)


def test_a_job_asking_for_a_resource_runs_on_the_node_that_has_it_and_its_logs_come_through_the_head(cluster, tmp_path):
    gate = tmp_path / "gate"
    me = tmp_path / "me.json"
    script = tmp_path / "main.py"
    script.write_text(textwrap.dedent(f"""
        import json, os, pathlib, time, actorlib
        json.dump({{"pid": os.getpid(), "pgid": os.getpgid(0)}}, open({str(me)!r}, "w"))
        actorlib.init()

        @actorlib.remote
        def where():
            return os.environ["ACTORLIB_NODE_IP"]

        print("task ran on", actorlib.get(where.remote()), flush=True)
        while not pathlib.Path({str(gate)!r}).exists():
            time.sleep(0.02)
        print("released", flush=True)
    """))
    client = cluster.client
    sid = client.submit_job(entrypoint=f"exec {PY} {script}", entrypoint_resources={"x": 1})
    wait_status(client, sid, JobStatus.RUNNING)
    assert client.get_job_info(sid).driver_node_id == node_id(cluster, "127.0.0.2")
    entrypoint = json.loads(poll(lambda: me.exists() and me.read_text(), timeout=30))
    process = psutil.Process(entrypoint["pid"])
    node = cluster.node_pids["127.0.0.2"]
    assert node in [p.pid for p in process.parents()]  # supervised by that node
    assert entrypoint["pgid"] != os.getpgid(node) and entrypoint["pgid"] in [p.pid for p in process.parents()]  # its own group
    (tree,) = [n for n in json.loads(cluster.cli("tree", "--json").stdout)["nodes"] if n["ip"] == "127.0.0.2"]
    shown = _find(tree["root"], f"job-{sid}")  # `actorlib tree` shows it in that node's jobs pool
    assert shown["role"] == "job" and shown["path"].endswith(f"/jobs/job-{sid}") and shown["resources"] == {"x": 1.0}
    assert shown["pid"] == entrypoint["pgid"] and shown["task"].endswith(f"{script}")

    async def follow() -> str:
        seen = ""
        async for chunk in client.tail_job_logs(sid):
            seen += chunk
            if "task ran on" in seen and not gate.exists():
                gate.touch()
        return seen

    followed = trio.run(follow)  # through the head's WebSocket, read from the node; ends with the job
    assert client.get_job_status(sid) == JobStatus.SUCCEEDED
    assert "task ran on 127.0.0.2\n" in followed and followed.endswith("released\n")
    assert client.get_job_logs(sid) == followed
    assert (node_session(cluster, "127.0.0.2") / "logs" / f"job-driver-{sid}.log").exists()  # written where it ran
    assert not (head_session(cluster) / "logs" / f"job-driver-{sid}.log").exists()  # and nowhere else
    assert client.get_job_info(sid).job_id  # its driver registered as this job


def _find(node: dict, child_id: str) -> dict:
    """The node with this id in a ``tree --json`` subtree."""
    if node["id"] == child_id:
        return node
    found = [f for child in node.get("children", []) if (f := _find(child, child_id))]
    return found[0] if found else {}


def test_stopping_a_job_on_another_node_kills_its_whole_process_tree_there_and_frees_its_resources(cluster, tmp_path):
    pids = tmp_path / "pids"
    tree = f"sleep 300 & echo $! >> {pids}; sh -c 'sleep 300 & echo $! >> {pids}; wait' & echo $$ >> {pids}; wait"
    client = cluster.client
    sid = client.submit_job(entrypoint=tree, entrypoint_resources={"x": 1}, submission_id="stop-on-node")
    poll(lambda: pids.exists() and len(pids.read_text().split()) == 3, timeout=30)
    processes = [int(p) for p in pids.read_text().split()]
    node = cluster.node_pids["127.0.0.2"]
    assert all(node in [p.pid for p in psutil.Process(pid).parents()] for pid in processes)
    assert client.stop_job(sid) is True
    assert wait_status(client, sid, JobStatus.STOPPED, JobStatus.FAILED) == JobStatus.STOPPED
    assert wait_gone(processes) == []  # SIGTERM to its group on its node: nothing left, no zombie
    assert "Stopping job stop-on-node" in client.get_job_logs(sid)
    after = client.submit_job(entrypoint="echo x is free again", entrypoint_resources={"x": 1})
    assert wait_status(client, after, JobStatus.SUCCEEDED, JobStatus.FAILED) == JobStatus.SUCCEEDED


def test_a_job_waits_pending_while_the_resource_is_busy_then_runs(cluster, tmp_path):
    gate = tmp_path / "gate"
    client = cluster.client
    first = client.submit_job(entrypoint=f"while [ ! -e {gate} ]; do sleep 0.02; done", entrypoint_resources={"x": 1})
    wait_status(client, first, JobStatus.RUNNING)
    second = client.submit_job(entrypoint="echo second", entrypoint_resources={"x": 1})
    info = poll(lambda: "waiting for x=1" in (i := client.get_job_info(second)).message and i, timeout=30)
    assert info.status == JobStatus.PENDING and "127.0.0.2" in info.message  # Ray: it waits, it does not fail
    gate.touch()
    assert wait_status(client, first, JobStatus.SUCCEEDED, JobStatus.FAILED) == JobStatus.SUCCEEDED
    assert wait_status(client, second, JobStatus.SUCCEEDED, JobStatus.FAILED) == JobStatus.SUCCEEDED
    assert client.get_job_info(second).driver_node_id == node_id(cluster, "127.0.0.2")
    assert client.get_job_logs(second).endswith("second\n")


def test_a_job_no_node_could_ever_run_fails_at_once_naming_the_resource(cluster):
    client = cluster.client
    sid = client.submit_job(entrypoint="true", entrypoint_resources={"x": 2})
    assert wait_status(client, sid, JobStatus.FAILED, JobStatus.SUCCEEDED, timeout=10) == JobStatus.FAILED
    info = client.get_job_info(sid)
    assert info.error_type == "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE"
    assert "x=2 (the most any node has: 1)" in info.message


def test_a_job_whose_node_dies_fails_naming_the_node_and_leaves_nothing_behind(cluster, tmp_path):
    node = cluster.add_node("127.0.0.3", cpus=1, resources={"doomed": 1})
    pid_file = tmp_path / "pid"
    client = cluster.client
    sid = client.submit_job(entrypoint=f"echo $$ > {pid_file}; exec sleep 300", entrypoint_resources={"doomed": 1})
    wait_status(client, sid, JobStatus.RUNNING)
    sleeper = poll(lambda: pid_file.exists() and pid_file.read_text().strip() and int(pid_file.read_text()), timeout=30)
    tail = JobSubmissionClient(cluster.url, token=cluster_token(cluster))
    os.kill(node, signal.SIGKILL)
    assert wait_gone([sleeper]) == []  # the entrypoint dies with its node
    assert wait_status(client, sid, JobStatus.FAILED, timeout=30) == JobStatus.FAILED
    info = client.get_job_info(sid)
    assert info.error_type == "JOB_SUPERVISOR_ACTOR_DIED" and "127.0.0.3" in info.message and "died" in info.message
    assert "127.0.0.3" in client.get_job_logs(sid) and "not running" in client.get_job_logs(sid)

    async def follow() -> str:
        return "".join([chunk async for chunk in tail.tail_job_logs(sid)])

    assert "127.0.0.3" in trio.run(follow)  # a tail of a job on a dead node ends, and says where its log is
    tail.close()


def test_a_job_on_another_node_is_claimed_again_after_a_head_restart(cluster, tmp_path):
    gate = tmp_path / "gate"
    client = cluster.client
    code = f"echo before; while [ ! -e {gate} ]; do sleep 0.02; done; echo after"
    sid = client.submit_job(entrypoint=code, entrypoint_resources={"x": 1}, submission_id="survivor")
    wait_status(client, sid, JobStatus.RUNNING)
    (head,) = cluster._ready_pids("head.json")
    os.kill(head, signal.SIGKILL)
    poll(lambda: cluster._ready_pids("head.json") and cluster._ready_pids("head.json")[0] != head, timeout=60)
    fresh = JobSubmissionClient(cluster_url(cluster), token=cluster_token(cluster))
    cluster.client = fresh
    try:
        poll(lambda: "before\n" in fresh.get_job_logs(sid), timeout=30)
        assert fresh.get_job_status(sid) == JobStatus.RUNNING  # its node kept it, and told the new head
        gate.touch()
        assert wait_status(fresh, sid, JobStatus.SUCCEEDED, JobStatus.FAILED) == JobStatus.SUCCEEDED
        assert fresh.get_job_logs(sid).endswith("before\nafter\n")
    finally:
        client.close()


SPECIAL = """\
cluster_name: jobs
max_workers: 1
idle_timeout_s: 1
cooldown_s: 0
available_node_types:
  head:
    resources: {CPU: 1}
  special:
    resources: {CPU: 1, special: 1}
    max_workers: 1
"""


def test_a_job_waits_for_the_autoscaler_to_add_a_node_with_its_resource_which_stays_while_it_runs(tmp_path):
    from ..autoscaler.conftest import Autoscaled

    cluster = Autoscaled(SPECIAL, head_cpus=1)
    client = JobSubmissionClient(cluster_url(cluster), token=Path(cluster.token_file).read_text().strip())
    try:
        gate = tmp_path / "gate"
        sid = client.submit_job(entrypoint=f"while [ ! -e {gate} ]; do sleep 0.02; done", entrypoint_resources={"special": 1})
        assert "waiting for the autoscaler" in client.get_job_info(sid).message or client.get_job_status(sid) == JobStatus.RUNNING
        wait_status(client, sid, JobStatus.RUNNING, timeout=90)  # it asked the autoscaler for a node, and got one
        node = client.get_job_info(sid).driver_node_id
        assert node and node != json.loads(next(Path(cluster.tmp).glob("actorlib-*/session_2*/head.json")).read_text())["node_id"]
        never = client.submit_job(entrypoint="true", entrypoint_resources={"unicorn": 1})
        assert wait_status(client, never, JobStatus.FAILED, JobStatus.SUCCEEDED, timeout=10) == JobStatus.FAILED
        assert "unicorn=1" in client.get_job_info(never).message  # no node type has it: fails at once
        # Three idle timeouts pass: the node running the entrypoint is busy, never drained under it.
        pid, deadline = _node_pid(cluster, node), time.monotonic() + 3.0
        while time.monotonic() < deadline:
            assert psutil.pid_exists(pid) and client.get_job_status(sid) == JobStatus.RUNNING
            time.sleep(0.1)
        gate.touch()
        assert wait_status(client, sid, JobStatus.SUCCEEDED, JobStatus.FAILED) == JobStatus.SUCCEEDED
    finally:
        client.close()
        cluster.stop()


def _node_pid(cluster, node_id: str) -> int:
    (info,) = [
        json.loads(p.read_text()) for p in Path(cluster.tmp).glob("actorlib-*/session_2*/node.json")
        if json.loads(p.read_text())["node_id"] == node_id
    ]  # fmt: skip
    return int(info["pid"])

"""``actorlib chaos`` and ``actorlib.testing.chaos``: what it hits (only the named cluster's
processes, found through the state API), freezing and resuming, and bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from click.testing import CliRunner

from actorlib._cli import main
from actorlib.testing import Cluster
from actorlib.testing.chaos import Chaos, Target, list_targets
from actorlib.testing._targets import still_listed

from ..integration.conftest import alive, poll, wait_gone


@pytest.fixture(scope="module")
def two_clusters():
    """Cluster A (a head and a node on 127.0.0.2) and cluster B (a head) side by side."""
    a = Cluster(head_cpus=1)
    b = None
    try:
        a.add_node("127.0.0.2", num_cpus=1)
        b = Cluster(head_cpus=1)
        yield a, b
    finally:
        left = a.shutdown() + (b.shutdown() if b is not None else [])
        assert left == [], f"processes left: {left}"


def chaos_cli(cluster: Cluster, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "actorlib", "chaos", "--address", cluster.address, *args], env=cluster.env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen,
    )  # fmt: skip


@pytest.mark.slow
def test_it_kills_a_worker_of_the_named_cluster_and_nothing_else(two_clusters, monkeypatch):
    a, b = two_clusters
    monkeypatch.setenv("ACTORLIB_TOKEN_FILE", a.token_file)
    workers = {t.pid for t in poll(lambda: list_targets("workers", a.address), timeout=30)}
    bystanders = set(b.processes()) | set(a.processes()) - workers
    done = chaos_cli(a, "--kill", "workers", "--max", "1", "--interval", "0", "--json")
    out, err = done.communicate(timeout=60)
    assert done.returncode == 0, err
    report = json.loads(out)
    (injection,) = report["injections"]
    assert (report["kind"], report["action"], injection["action"]) == ("workers", "kill", "kill")
    assert injection["pid"] in workers and wait_gone([injection["pid"]], 10) == []
    assert injection["node_ip"] in ("127.0.0.1", "127.0.0.2")
    assert all(alive(pid) for pid in bystanders)  # cluster B, and A's heads, nodes and zygotes


@pytest.mark.slow
def test_a_frozen_node_is_resumed_after_its_time_and_on_ctrl_c(two_clusters, monkeypatch):
    a, _ = two_clusters
    monkeypatch.setenv("ACTORLIB_TOKEN_FILE", a.token_file)
    node = psutil.Process(a.node_pids["127.0.0.2"])
    timed = chaos_cli(a, "--kill", "nodes", "--freeze", "1", "--max", "1", "--interval", "0")
    poll(lambda: node.status() == psutil.STATUS_STOPPED, timeout=30)
    out, err = timed.communicate(timeout=60)
    assert timed.returncode == 0, err
    assert "froze for 1s node pid" in out and node.status() != psutil.STATUS_STOPPED
    interrupted = chaos_cli(a, "--kill", "nodes", "--freeze", "600", "--max", "1", "--interval", "0")
    poll(lambda: node.status() == psutil.STATUS_STOPPED, timeout=30)
    interrupted.send_signal(signal.SIGINT)  # Ctrl-C: it resumes what it froze before it exits
    interrupted.communicate(timeout=60)
    assert node.status() != psutil.STATUS_STOPPED
    assert poll(lambda: "127.0.0.2" in {n.node_ip for n in list_nodes_alive(a)}, timeout=30)


def list_nodes_alive(cluster: Cluster) -> list:
    from actorlib.util.state import list_nodes

    return [n for n in list_nodes(address=cluster.address) if n.state == "ALIVE"]


def test_a_pid_that_is_not_the_listed_process_is_left_alone():
    me = psutil.Process()
    assert still_listed(Target(kind="workers", pid=os.getpid(), node_id="n", node_ip="127.0.0.1")) is None  # not ours
    sleeper = subprocess.Popen([sys.executable, "-c", "import setproctitle, time; setproctitle.setproctitle('actorlib::IDLE'); time.sleep(60)"])
    try:
        poll(lambda: psutil.Process(sleeper.pid).cmdline()[:1] == ["actorlib::IDLE"], timeout=30)
        listed = Target(kind="workers", pid=sleeper.pid, node_id="n", node_ip="127.0.0.1", listed=time.time())
        assert still_listed(listed) is not None
        earlier = Target(kind="workers", pid=sleeper.pid, node_id="n", node_ip="127.0.0.1", listed=me.create_time())
        assert still_listed(earlier) is None  # listed before it started: that pid was another process then
    finally:
        sleeper.kill()
        sleeper.wait()


def test_bad_options_are_named():
    runner = CliRunner()
    bad_kind = runner.invoke(main, ["chaos", "--kill", "everything"])
    assert bad_kind.exit_code == 2 and "'everything' is not one of" in bad_kind.output
    bad_interval = runner.invoke(main, ["chaos", "--kill", "workers", "--interval", "-1"])
    assert bad_interval.exit_code == 2 and "--interval" in bad_interval.output
    no_cluster = runner.invoke(main, ["chaos", "--kill", "workers", "--address", "127.0.0.1:1", "--max", "1", "--duration", "1"])
    assert no_cluster.exit_code == 0 and "listing failed" in no_cluster.output and "0 kills" in no_cluster.output
    with pytest.raises(ValueError, match="unknown target kind 'gpus'"):
        Chaos("gpus")
    with pytest.raises(ValueError, match="freeze must be a positive"):
        Chaos("nodes", freeze=0)

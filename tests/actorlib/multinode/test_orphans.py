"""No orphans, ever: SIGKILL each kind of process of a CLI-started cluster and read the process table.

One cluster (head 127.0.0.1 under its daemon; node 127.0.0.2, later 127.0.0.3) goes through the
matrix in order, the cluster-ending kills last. Each row kills one process with SIGKILL and
asserts, from the process table (processes found by the cluster's ACTORLIB_TMPDIR in their
environment, and by parent links), that what must die is gone within seconds, that what must
live is still there, and that the cluster still runs work. After every row, no process of the
cluster lacks a living parent inside the cluster (the daemon and the nodes are the roots).

| kill        | must die                                              | must live, and work                        |
|-------------|-------------------------------------------------------|--------------------------------------------|
| worker      | it, and what its task started                         | node, zygote, other workers, actor; tasks  |
| actor       | it, and what it started                               | node, workers; a new actor                 |
| driver      | its workers, its actors, its leases (resources freed) | head, nodes; tasks                         |
| job         | the entrypoint's processes, its driver's actors       | head, node; the job is FAILED              |
| node        | its zygote, workers, actors and what they started;    | head, daemon, the other node; tasks        |
|             | the head marks it DEAD                                |                                            |
| zygote      | it, the workers and actors it forked, what they started| node (starts workers by exec); tasks      |
| head        | its own node's zygote and workers                     | daemon (restarts it), nodes (re-register)  |
| daemon      | the head at once, the nodes (and their exec'd workers'| nothing                                    |
|             | children) after their grace                           |                                            |
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

import actorlib
from actorlib.job_submission import JobSubmissionClient
from actorlib.util import state

from ...fuzzcount import figure
from ..integration.conftest import alive, poll, processes_mentioning, wait_gone
from .conftest import MultiNode

pytestmark = pytest.mark.slow
GONE_WITHIN = 10.0  # seconds: generous on 2 busy cores; the kills take milliseconds
FAR = {"far": 1}  # a resource only the worker node has


@actorlib.remote
def hold(pid_file: str) -> None:
    """Write this worker's pid and its child's, then wait for ever (it is killed)."""
    import subprocess as sp
    import time

    child = sp.Popen(["sleep", "300"])
    Path(pid_file).write_text(f"{os.getpid()} {child.pid}")
    time.sleep(300)


@actorlib.remote
def where() -> str:
    return actorlib.get_runtime_context().get_node_id()


@actorlib.remote(max_restarts=0)
class Holder:
    def __init__(self) -> None:
        import subprocess as sp

        self.child = sp.Popen(["sleep", "300"])

    def pids(self) -> tuple[int, int]:
        return os.getpid(), self.child.pid


class Matrix(MultiNode):
    def roots(self) -> set[int]:
        """The processes meant to have no parent in the cluster: the daemon and the nodes."""
        return set(self._ready_pids("daemon.json")) | set(self._ready_pids("node.json"))

    def everything(self) -> set[int]:
        return set(processes_mentioning(self.tmp))

    def orphans(self) -> list[str]:
        """Processes of the cluster whose parent is not a live process of the cluster (roots aside)."""
        found, roots = self.everything(), self.roots()
        lost = []
        for pid in found - roots:
            try:
                process = psutil.Process(pid)
                parent = process.ppid()
                if parent not in found and parent != os.getpid():  # (the CLI runs this test starts)
                    lost.append(f"{pid} {process.cmdline()[:2]} (parent {parent})")
            except psutil.NoSuchProcess:
                pass
        return lost

    def titled(self, title: str, under: int | None = None) -> list[int]:
        pids = psutil.Process(under).children(recursive=True) if under else [psutil.Process(p) for p in self.everything()]
        found = []
        for process in pids:
            try:
                if process.cmdline()[:1] == [f"actorlib::{title}"]:
                    found.append(process.pid)
            except psutil.NoSuchProcess:
                pass
        return found

    def head(self) -> int:
        (pid,) = [pid for pid in self._ready_pids("head.json") if alive(pid)]
        return pid

    def node_resources(self, ip: str) -> tuple[dict, dict]:
        """(total, available) resources of the live node at ``ip``, as the head has them."""
        (node,) = state.list_nodes(filters=[("node_ip", "=", ip), ("state", "=", "ALIVE")])
        return node.resources_total, node.resources_available


@pytest.fixture(scope="module")
def matrix():
    multi = Matrix([{"ip": "127.0.0.2", "cpus": 2, "resources": {"far": 2}}], node_timeout=2.0, grace=8.0)
    with multi.connected():
        yield multi


def runs_tasks(matrix: Matrix) -> None:
    """The cluster still runs work: a task on any node, and one on the worker node."""
    node_ids = matrix.node_ids()
    assert actorlib.get(where.options(num_cpus=0).remote(), timeout=60) in node_ids.values()
    assert actorlib.get(where.options(resources=FAR).remote(), timeout=60) == node_ids[far(matrix)[0]]


def kill(pid: int) -> float:
    """SIGKILL ``pid``; return when."""
    os.kill(pid, signal.SIGKILL)
    return time.monotonic()


def gone(row: str, pids, killed: float, timeout: float = GONE_WITHIN) -> None:
    """Assert every pid is gone within ``timeout`` seconds; record how soon after the kill."""
    assert wait_gone(sorted(pids), timeout) == []
    figure(f"SIGKILL {row}: what must die was gone in", f"{time.monotonic() - killed:.2f} s")


def far(matrix: Matrix) -> tuple[str, int]:
    """The worker node (127.0.0.2, then 127.0.0.3 once that one is killed): its IP and pid."""
    return next((ip, pid) for ip, pid in sorted(matrix.node_pids.items()) if alive(pid))


def no_orphans(matrix: Matrix) -> None:
    """Every process of the cluster has a living parent in it (a dying one may take a moment to be reaped)."""
    try:
        poll(lambda: not matrix.orphans(), timeout=GONE_WITHIN)
    except AssertionError:
        raise AssertionError(f"orphans: {matrix.orphans()}") from None


def test_a_killed_worker_takes_what_its_task_started_and_nothing_else(matrix, tmp_path):
    _, node = far(matrix)
    actor = Holder.options(resources=FAR).remote()
    actor_pid, _ = actorlib.get(actor.pids.remote(), timeout=60)
    pid_file = tmp_path / "pids"
    ref = hold.options(resources=FAR, max_retries=0).remote(str(pid_file))
    worker, child = map(int, poll(lambda: pid_file.exists() and pid_file.read_text().split(), timeout=60))
    zygote = matrix.titled("zygote", under=node)
    others = [pid for pid in psutil.Process(node).children(recursive=True) if pid.pid not in (worker, child)]
    killed = kill(worker)
    gone("worker", [worker, child], killed)
    assert all(alive(p.pid) for p in others) and alive(node) and alive(actor_pid) and zygote and all(map(alive, zygote))
    with pytest.raises(actorlib.exceptions.WorkerCrashedError):
        actorlib.get(ref, timeout=60)
    runs_tasks(matrix)
    assert actorlib.get(actor.pids.remote(), timeout=60)[0] == actor_pid
    actorlib.kill(actor)
    no_orphans(matrix)


def test_a_killed_actor_takes_what_it_started_and_nothing_else(matrix):
    _, node = far(matrix)
    actor = Holder.options(resources=FAR).remote()
    actor_pid, child = actorlib.get(actor.pids.remote(), timeout=60)
    others = [p.pid for p in psutil.Process(node).children(recursive=True) if p.pid not in (actor_pid, child)]
    killed = kill(actor_pid)
    gone("actor", [actor_pid, child], killed)
    with pytest.raises(actorlib.exceptions.ActorDiedError):
        actorlib.get(actor.pids.remote(), timeout=60)
    assert alive(node) and all(alive(pid) for pid in others)
    fresh = Holder.options(resources=FAR).remote()
    assert alive(actorlib.get(fresh.pids.remote(), timeout=60)[0])
    actorlib.kill(fresh)
    runs_tasks(matrix)
    no_orphans(matrix)


DRIVER = """
    import os, sys, time, pathlib
    import actorlib

    @actorlib.remote(resources={"far": 1})
    def hold(marker):
        pathlib.Path(marker + ".task").write_text(str(os.getpid()))
        time.sleep(300)

    @actorlib.remote(resources={"far": 1}, num_cpus=0)
    class Keeper:
        def pid(self):
            return os.getpid()

    actorlib.init(address=sys.argv[1])
    keeper = Keeper.remote()
    ref = hold.remote(sys.argv[2])
    pathlib.Path(sys.argv[2] + ".actor").write_text(str(actorlib.get(keeper.pid.remote())))
    time.sleep(300)
"""


def test_a_killed_driver_takes_its_workers_actors_and_leases(matrix, tmp_path):
    ip, node = far(matrix)
    total, _ = matrix.node_resources(ip)
    env = {**matrix.env, "ACTORLIB_TOKEN_FILE": matrix.token_file}
    marker = str(tmp_path / "driver")
    log = open(tmp_path / "driver.log", "w")
    driver = subprocess.Popen([sys.executable, "-c", textwrap.dedent(DRIVER), matrix.address, marker], env=env, stdout=log, stderr=log)
    try:
        task = int(poll(lambda: os.path.exists(marker + ".task") and Path(marker + ".task").read_text(), timeout=60))
        actor = int(poll(lambda: os.path.exists(marker + ".actor") and Path(marker + ".actor").read_text(), timeout=60))
        poll(lambda: matrix.node_resources(ip)[1]["far"] < total["far"], timeout=GONE_WITHIN)  # (heartbeats)
        killed = kill(driver.pid)
    finally:
        driver.kill()
        driver.wait(30)
        log.close()
    gone("driver", [task, actor], killed)
    poll(lambda: matrix.node_resources(ip)[1].get("far") == total["far"], timeout=GONE_WITHIN)
    assert alive(matrix.head()) and alive(node)
    runs_tasks(matrix)
    no_orphans(matrix)


JOB_DRIVER = """
import os, sys, time, pathlib
import actorlib

@actorlib.remote(resources={"far": 1}, num_cpus=0)
class Keeper:
    def pid(self):
        return os.getpid()

actorlib.init()
keeper = Keeper.remote()
pathlib.Path(sys.argv[1]).write_text(f"{os.getpid()} {actorlib.get(keeper.pid.remote())}")
time.sleep(300)
"""


def test_a_killed_job_entrypoint_takes_its_children_and_the_job_fails(matrix, tmp_path):
    script = tmp_path / "job_driver.py"
    script.write_text(JOB_DRIVER)
    pids = tmp_path / "pids"
    entrypoint = (
        f"echo $$ > {pids}.sh; sleep 300 & echo $! > {pids}.sleep; "
        f"{sys.executable} {script} {pids}.driver & wait"
    )
    url = json.loads((Path(matrix.token_file).parent / "head.json").read_text())["dashboard"]
    client = JobSubmissionClient(url, token=Path(matrix.token_file).read_text().strip())
    try:
        sid = client.submit_job(entrypoint=entrypoint)
        driver, actor = map(int, poll(lambda: Path(f"{pids}.driver").exists() and Path(f"{pids}.driver").read_text().split(), timeout=60))
        shell, sleeper = int(Path(f"{pids}.sh").read_text()), int(Path(f"{pids}.sleep").read_text())
        killed = kill(shell)  # the entrypoint itself
        gone("job entrypoint", [shell, sleeper, driver, actor], killed)
        poll(lambda: client.get_job_status(sid) not in ("PENDING", "RUNNING"), timeout=GONE_WITHIN)
        assert client.get_job_status(sid) == "FAILED"
    finally:
        client.close()
    assert alive(matrix.head()) and alive(far(matrix)[1])
    runs_tasks(matrix)
    no_orphans(matrix)


def test_a_killed_node_takes_its_whole_tree_and_the_head_marks_it_dead(matrix):
    actor = Holder.options(resources=FAR).remote()
    actor_pid, child = actorlib.get(actor.pids.remote(), timeout=60)
    doomed = matrix.node_pids["127.0.0.2"]
    node_id = matrix.node_ids()["127.0.0.2"]
    tree = [p.pid for p in psutil.Process(doomed).children(recursive=True)]
    assert actor_pid in tree and child in tree and matrix.titled("zygote", under=doomed)
    matrix.add_node("127.0.0.3", cpus=2, resources={"far": 2})  # the rows after this one need a worker node
    poll(lambda: "127.0.0.3" in matrix.node_ids(), timeout=30)
    killed = kill(doomed)
    gone("node", [doomed, *tree], killed)
    poll(lambda: not any(n["NodeID"] == node_id and n["Alive"] for n in actorlib.nodes()), timeout=GONE_WITHIN + matrix.node_timeout)
    figure("SIGKILL node: the head marked it dead in", f"{time.monotonic() - killed:.2f} s")
    del matrix.node_pids["127.0.0.2"]
    assert alive(matrix.head()) and all(map(alive, matrix._ready_pids("daemon.json")))
    runs_tasks(matrix)
    no_orphans(matrix)


def test_a_killed_zygote_takes_the_workers_it_forked_and_the_node_carries_on(matrix):
    _, node = far(matrix)
    actor = Holder.options(resources=FAR).remote()
    actor_pid, child = actorlib.get(actor.pids.remote(), timeout=60)
    (zygote,) = matrix.titled("zygote", under=node)
    forked = [p.pid for p in psutil.Process(zygote).children(recursive=True)]
    assert actor_pid in forked
    killed = kill(zygote)
    gone("zygote", [zygote, *forked], killed)  # its children die with it (PDEATHSIG), theirs too
    assert alive(node) and alive(matrix.head())
    runs_tasks(matrix)  # new workers are started by exec (the node forks no new zygote)
    with pytest.raises(actorlib.exceptions.ActorDiedError):
        actorlib.get(actor.pids.remote(), timeout=60)
    no_orphans(matrix)


def test_a_killed_head_is_restarted_by_its_daemon_and_nodes_register_again(matrix):
    head = matrix.head()
    own = [p.pid for p in psutil.Process(head).children(recursive=True)]  # its node's zygote and workers
    _, node = far(matrix)
    matrix.disconnect()  # a driver of its own, below, after the restart
    killed = kill(head)
    gone("head", [head, *own], killed)
    # A new head, ready (its ready file names it), started by the daemon.
    restarted = poll(lambda: [pid for pid in matrix._ready_pids("head.json") if pid != head and alive(pid)], timeout=60)
    figure("SIGKILL head: a new head was ready in", f"{time.monotonic() - killed:.2f} s")
    (daemon,) = matrix._ready_pids("daemon.json")
    assert psutil.Process(restarted[0]).ppid() == daemon and matrix.titled("head 127.0.0.1") == restarted
    (daemon_log,) = Path(matrix.tmp).glob("actorlib-*/session_2*/logs/daemon.err")
    said = [line for line in daemon_log.read_text().splitlines() if f"(pid {head}) failed" in line]
    assert len(said) == 1 and "killed by SIGKILL" in said[0], said  # the daemon's log says why the head ended
    assert alive(node) and all(map(alive, matrix.titled("zygote", under=node)))  # the node waited for it
    matrix.connect()
    poll(lambda: len(matrix.node_ids()) == 2, timeout=60)  # the node registered with the new head
    figure("SIGKILL head: its nodes were registered again in", f"{time.monotonic() - killed:.2f} s")
    runs_tasks(matrix)
    no_orphans(matrix)


def test_a_killed_daemon_takes_the_head_at_once_and_the_nodes_after_their_grace(matrix):
    actor = Holder.options(resources=FAR).remote()
    actor_pid, child = actorlib.get(actor.pids.remote(), timeout=60)  # exec'd: its node's zygote is gone
    (daemon,) = matrix._ready_pids("daemon.json")
    head = matrix.head()
    head_tree = [p.pid for p in psutil.Process(head).children(recursive=True)]
    everything = matrix.everything()
    assert {actor_pid, child} <= everything
    matrix.disconnect()
    killed = kill(daemon)
    gone("daemon (the head)", [head, *head_tree], killed)
    gone(f"daemon (everything; nodes' grace {matrix.grace:g} s)", everything, killed, matrix.grace + GONE_WITHIN)
    assert matrix.everything() == set()

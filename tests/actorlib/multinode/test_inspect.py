"""The state API and the inspection CLI on a real 3-node loopback cluster.

One cluster serves the module (the ``cluster`` fixture): actors and tasks are
placed on named nodes by custom resources, processes are SIGKILLed, and the
last test kills a node. Every ``--json`` output is parsed, not grepped.
"""

from __future__ import annotations

import json
import os
import signal
import sys

import pexpect
import psutil
import pytest

import actorlib
from actorlib.util import state

from ..integration.conftest import poll, wait_gone

pytestmark = pytest.mark.slow


@actorlib.remote
class Keeper:
    def __init__(self, label):
        self.label = label

    def pid(self):
        print(f"keeper {self.label} says hello", flush=True)
        return os.getpid()


@actorlib.remote
def square(x):
    print(f"squaring {x}", flush=True)
    return x * x


@actorlib.remote(max_retries=0)
def die():
    os.kill(os.getpid(), signal.SIGKILL)


def pid_of(actor, old=None):
    """The actor's pid once it answers from a process other than ``old`` (calls in flight
    while it restarts fail with a non-final ActorDiedError)."""

    def answer():
        try:
            pid = actorlib.get(actor.pid.remote(), timeout=60)
        except actorlib.exceptions.ActorDiedError as error:
            if error.final:
                raise
            return None
        return pid if pid != old else None

    return poll(answer, timeout=60)


def cli_json(cluster, *args):
    result = cluster.cli(*args, "--json")
    return json.loads(result.stdout)


def walk(node):
    yield node
    for child in node["children"]:
        yield from walk(child)


def tree_of(cluster, node_id):
    tree = cli_json(cluster, "tree")
    assert tree["version"] == 1
    (node,) = [n for n in tree["nodes"] if n["node_id"] == node_id]
    return node


def tree_of_errors(cluster, node_id):
    (node,) = [n for n in cli_json(cluster, "tree", "--errors")["nodes"] if n["node_id"] == node_id]
    return node


def find(node, **fields):
    return [n for n in walk(node["root"]) if all(n.get(k) == v for k, v in fields.items())]


@pytest.fixture(scope="module")
def ids(cluster):
    return cluster.node_ids()


def test_tree_shows_every_node_and_an_actor_restart(cluster, ids):
    keeper = Keeper.options(resources={"ssd": 1}, num_cpus=0, max_restarts=2, name="keeper").remote("a")
    pid = actorlib.get(keeper.pid.remote(), timeout=60)
    tree = cli_json(cluster, "tree")
    assert {n["node_id"] for n in tree["nodes"]} == set(ids.values())
    assert all(n["alive"] and n["root"] is not None for n in tree["nodes"])
    head = next(n for n in tree["nodes"] if n["is_head"])
    assert head["root"]["id"] == "cluster" and head["root"]["strategy"] == "one_for_one"
    assert head["root"]["intensity"] == {"restarts": 0, "max_restarts": 3, "within": 60.0}

    os.kill(pid, signal.SIGKILL)
    new_pid = pid_of(keeper, old=pid)
    node = tree_of(cluster, ids["127.0.0.2"])
    (process,) = find(node, role="actor", actor_name="keeper")
    assert process["pid"] == new_pid and process["state"] == "running"
    assert process["restarts"] == 1 and process["class_name"] == "Keeper"
    assert process["last_exit"]["reason"].startswith("killed by SIGKILL")
    assert process["last_exit"]["signal"] == signal.SIGKILL
    assert process["rss"] > 0 and process["cpu_percent"] is not None and process["uptime"] > 0
    assert process["job_id"] == actorlib.get_runtime_context().get_job_id()
    (sup,) = find(node, role="actor-supervisor", actor_name="keeper")
    assert sup["intensity"]["restarts"] == 1 and sup["intensity"]["max_restarts"] == 2
    assert sup["intensity"]["within"] is None  # Ray's max_restarts: for the actor's whole life

    troubled = tree_of_errors(cluster, ids["127.0.0.2"])
    assert [n["actor_name"] for n in find(troubled, role="actor")] == ["keeper"]
    assert not find(troubled, role="worker")  # healthy task workers are left out

    (listed,) = [a for a in cli_json(cluster, "list", "actors", "--filter", "name=keeper")]
    assert listed["state"] == "ALIVE" and listed["num_restarts"] == 1 and listed["pid"] == new_pid
    assert listed["node_id"] == ids["127.0.0.2"]
    got = cli_json(cluster, "get", "actor", listed["actor_id"][:20])
    assert got["actor_id"] == listed["actor_id"]
    assert [a.name for a in state.list_actors(filters=[("state", "=", "ALIVE"), ("name", "=", "keeper")])] == ["keeper"]


def test_logs_of_an_actor_are_read_through_its_node(cluster, ids):
    writer = Keeper.options(resources={"ssd": 0.1}, num_cpus=0, name="writer").remote("w")
    actorlib.get(writer.pid.remote(), timeout=60)
    actorlib.get(writer.pid.remote(), timeout=60)
    (actor,) = state.list_actors(filters=[("name", "=", "writer")])

    def logged():
        out = cluster.cli("logs", "--actor", actor.actor_id, check=False).stdout  # no file before its first line
        return out.count("keeper w says hello") == 2 and out

    poll(logged, timeout=15)
    tail = cluster.cli("logs", "--actor", actor.actor_id, "--tail", "1").stdout
    assert tail == "keeper w says hello\n"
    listing = cli_json_logs(cluster)
    assert any(f["pid"] == actor.pid and f["node_id"] == ids["127.0.0.2"] for f in listing)
    missing = cluster.cli("logs", "--node", ids["127.0.0.2"], "--file", "nope.out", check=False)
    assert missing.returncode == 1 and "no log file 'nope.out'" in missing.stderr
    for bad in ("../token", "bad\x00name", ".hidden", ""):
        with pytest.raises(FileNotFoundError, match="log file"):
            "".join(state.get_log(node_id=ids["127.0.0.2"], filename=bad or "."))
    own = cluster.cli("logs", "--node", ids["127.0.0.2"], "--err")  # the node process's own log
    assert own.returncode == 0
    assert state.get_node(ids["127.0.0.2"]).state == "ALIVE"  # bad requests did not hurt the node


def cli_json_logs(cluster):
    return cli_json(cluster, "list", "logs", "--limit", "10000")


def test_tasks_listing_summary_and_timeline(cluster, ids, tmp_path):
    refs = [square.options(resources={"gpu_like": 1}).remote(i) for i in range(6)]
    assert actorlib.get(refs, timeout=60) == [i * i for i in range(6)]
    job = actorlib.get_runtime_context().get_job_id()

    def finished():
        tasks = state.list_tasks(filters=[("name", "=", "square"), ("job_id", "=", job)], limit=1000)
        return len(tasks) >= 6 and tasks

    tasks = poll(finished, timeout=15)
    assert {t.state for t in tasks} == {"FINISHED"} and {t.node_id for t in tasks} == {ids["127.0.0.3"]}
    summary = cli_json(cluster, "summary", "tasks")
    assert summary["by_name"]["square"]["FINISHED"] >= 6
    limited = cli_json(cluster, "list", "tasks", "--limit", "2")
    assert len(limited) == 2
    one = cli_json(cluster, "get", "task", tasks[0].task_id)
    assert one["name"] == "square" and one["worker_pid"] > 0
    by_task = cluster.cli("logs", "--task", one["task_id"]).stdout
    by_worker = cluster.cli("logs", "--node", one["node_id"], "--worker", str(one["worker_pid"])).stdout
    assert "squaring " in by_task and by_task == by_worker

    trace = tmp_path / "trace.json"
    result = cluster.cli("timeline", "-o", str(trace))
    assert "wrote" in result.stdout
    events = json.loads(trace.read_text())
    squares = [e for e in events if e["ph"] == "X" and e["name"] == "square"]
    assert len(squares) >= 6 and all(e["dur"] >= 0 and e["tid"] > 0 for e in squares)
    rows = {e["tid"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {e["tid"] for e in squares} <= rows


def test_a_sigkilled_worker_fails_its_task_and_leaves_the_tree(cluster, ids):
    ref = die.options(resources={"gpu_like": 1}).remote()
    with pytest.raises(actorlib.exceptions.WorkerCrashedError):
        actorlib.get(ref, timeout=60)

    def failed():
        return state.list_tasks(filters=[("name", "=", "die")])

    (task,) = poll(failed, timeout=15)
    assert task.state == "FAILED" and "SIGKILL" in task.error_message and task.node_id == ids["127.0.0.3"]
    assert task.worker_pid > 0  # it died before reporting its id: listed from its lease
    node = tree_of(cluster, ids["127.0.0.3"])
    assert not [n for n in find(node, role="worker") if n["pid"] == task.worker_pid]
    workers = cli_json(cluster, "list", "workers", "--filter", f"node_id={ids['127.0.0.3']}")
    assert task.worker_pid not in {w["pid"] for w in workers}


def test_a_supervision_group_is_a_subtree(cluster, ids):
    with actorlib.supervisor(strategy="one_for_all", max_restarts=4, period_s=30, name="pair") as group:
        first = Keeper.options(resources={"ssd": 0.1}, num_cpus=0).remote("first")
        second = Keeper.options(resources={"ssd": 0.1}, num_cpus=0).remote("second")
    pids = actorlib.get([first.pid.remote(), second.pid.remote()], timeout=60)
    node = tree_of(cluster, ids["127.0.0.2"])
    (pair,) = find(node, id="pair")
    assert pair["role"] == "group" and pair["strategy"] == "one_for_all"
    assert pair["intensity"] == {"restarts": 0, "max_restarts": 4, "within": 30.0}
    members = [c for c in pair["children"] if c["role"] == "actor"]
    assert sorted(c["pid"] for c in members) == sorted(pids)
    assert {c["class_name"] for c in members} == {"Keeper"}
    del group


def test_listings_of_nodes_jobs_objects_and_placement_groups(cluster, ids):
    nodes = cli_json(cluster, "list", "nodes")
    assert {n["node_id"] for n in nodes if n["state"] == "ALIVE"} == set(ids.values())
    assert sum(n["is_head_node"] for n in nodes) == 1
    jobs = cli_json(cluster, "list", "jobs")
    mine = [j for j in jobs if j["job_id"] == actorlib.get_runtime_context().get_job_id()]
    assert mine and mine[0]["status"] == "RUNNING" and mine[0]["driver_pid"] == os.getpid()
    big = actorlib.put(b"x" * (1 << 20))  # stored, not inline
    objects = cli_json(cluster, "list", "objects")
    assert any(o["object_id"] == big.hex() and o["object_size"] >= 1 << 20 for o in objects)
    pg = actorlib.util.placement_group([{"CPU": 0.1}])
    actorlib.get(pg.ready(), timeout=60)
    groups = cli_json(cluster, "list", "placement-groups")
    assert any(g["placement_group_id"] == pg.id.hex() and g["state"] == "CREATED" for g in groups)
    actorlib.util.remove_placement_group(pg)
    bad = cluster.cli("list", "actors", "--filter", "colour=red", check=False)
    assert bad.returncode == 2 and "no field 'colour'" in bad.stderr


def test_tree_watch_in_a_terminal_exits_cleanly(cluster, ids):
    child = pexpect.spawn(
        sys.executable, ["-m", "actorlib", "tree", "--watch", "--interval", "1"], env=cluster.env,
        dimensions=(60, 200), timeout=60,
    )  # fmt: skip
    try:
        child.expect("\x1b\\[\\?1049h")  # the alternate screen
        child.expect("keys: c cpu")
        child.expect(ids["127.0.0.3"][:12])
        child.send("m")
        child.expect("sorted by mem")
        child.sendintr()  # Ctrl-C
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before
    assert b"\x1b[?1049l" in child.before  # the terminal's own screen is back


def test_status_watch_refreshes_in_place(cluster):
    child = pexpect.spawn(
        sys.executable, ["-m", "actorlib", "status", "--watch", "--interval", "1"], env=cluster.env,
        dimensions=(40, 120), timeout=60,
    )  # fmt: skip
    try:
        child.expect("Nodes: 3 healthy")
        child.expect("\x1b\\[\\d*A")  # the cursor moves up: the next report overwrites this one
        child.expect("Nodes: 3 healthy")
        child.sendintr()
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0, child.before


def test_plain_output_when_not_a_terminal(cluster):
    out = cluster.cli("tree").stdout
    assert "\x1b[" not in out and "cluster  one_for_one" in out


def test_a_dead_node_is_marked_dead_and_its_children_gone(cluster, ids):
    doomed = Keeper.options(resources={"gpu_like": 1}, num_cpus=0).remote("doomed")
    actorlib.get(doomed.pid.remote(), timeout=60)
    node_pid = cluster.node_pids["127.0.0.3"]
    node_id = ids["127.0.0.3"]
    hosted = [p.pid for p in psutil.Process(node_pid).children(recursive=True)]
    assert hosted  # its zygote, workers and the actor
    os.kill(node_pid, signal.SIGKILL)

    def dead():
        return [n for n in state.list_nodes(filters=[("node_id", "=", node_id), ("state", "=", "DEAD")])]

    poll(dead, timeout=30)
    tree = cli_json(cluster, "tree")
    (gone,) = [n for n in tree["nodes"] if n["node_id"] == node_id]
    assert gone["alive"] is False and gone["root"] is None and "dead" in gone["error"]
    assert all(n["root"] is not None for n in tree["nodes"] if n["node_id"] != node_id)
    actors = state.list_actors(filters=[("node_id", "=", node_id)])
    assert actors and all(a.state == "DEAD" for a in actors)
    # every process the node ran is gone (its workers carry the parent watchdog)
    assert not wait_gone([node_pid, *hosted], 10)
    assert not state.list_workers(filters=[("node_id", "=", node_id)])

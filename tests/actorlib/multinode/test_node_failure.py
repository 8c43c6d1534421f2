"""Nodes failing under load: work is retried elsewhere, actors move, the dead are detected."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest

import actorlib
from actorlib.util import get_placement_group, placement_group, placement_group_table, remove_placement_group, state
from actorlib.util.scheduling_strategies import NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy

from ..integration.conftest import alive, poll, wait_gone
from .conftest import MultiNode


@pytest.fixture(scope="module")
def cluster():
    multi = MultiNode(
        [
            {"ip": "127.0.0.2", "cpus": 1, "resources": {"pool": 1}},
            {"ip": "127.0.0.3", "cpus": 1, "resources": {"pool": 1}},
            {"ip": "127.0.0.4", "cpus": 1, "resources": {"pool": 1}},
            {"ip": "127.0.0.5", "cpus": 1, "resources": {"pool": 1}},
            {"ip": "127.0.0.6", "cpus": 1, "resources": {"pool": 1}},
        ],
        node_timeout=2.0,
        grace=6.0,  # well past the stall test's 2.5 s head stop, on a loaded machine too
    )
    with multi.connected():
        yield multi


@actorlib.remote(resources={"pool": 1})
def slow_square(x: int) -> tuple[int, str]:
    time.sleep(0.3)
    return x * x, actorlib.get_runtime_context().get_node_id()


@actorlib.remote(resources={"pool": 1}, max_restarts=1)
class Mover:
    def node(self) -> str:
        return actorlib.get_runtime_context().get_node_id()


def test_bundles_of_a_dead_node_are_placed_again_and_their_actors_follow(cluster):
    pg = placement_group([{"pool": 1}, {"pool": 1}], strategy="STRICT_SPREAD")
    assert pg.wait(30)
    before = placement_group_table(pg)["bundles_to_node_id"]
    actor = Mover.options(num_cpus=0, scheduling_strategy=PlacementGroupSchedulingStrategy(pg, 0)).remote()
    assert actorlib.get(actor.node.remote(), timeout=60) == before[0]
    ip = next(ip for ip, node_id in cluster.node_ids().items() if node_id == before[0])
    os.kill(cluster.node_pids.pop(ip), signal.SIGKILL)

    def placed_again():
        row = placement_group_table(pg)
        return row if row["state"] == "CREATED" and row["bundles_to_node_id"].get(0) not in (None, before[0]) else None

    after = poll(placed_again, timeout=60)["bundles_to_node_id"]
    assert after[1] == before[1]  # the surviving bundle stays where it was
    assert after[0] in cluster.node_ids().values() and after[0] != after[1]
    assert poll(lambda: _node_of(actor), timeout=60) == after[0]
    remove_placement_group(pg)


def _node_of(actor):
    try:
        return actorlib.get(actor.node.remote(), timeout=30)
    except actorlib.exceptions.ActorDiedError as error:
        assert not error.final, str(error)
        return None


@actorlib.remote(resources={"pool": 1})
def block(n: int) -> dict:
    return {"node": actorlib.get_runtime_context().get_node_id(), "data": np.arange(n, dtype=np.int64)}


@actorlib.remote(resources={"pool": 1}, max_retries=0)
def block_once(n: int) -> dict:
    return {"node": actorlib.get_runtime_context().get_node_id(), "data": np.arange(n, dtype=np.int64)}


@actorlib.remote(num_cpus=0)
class Borrower:
    def total(self, refs: list) -> tuple[int, str]:
        value = actorlib.get(refs[0])
        return int(value["data"].sum()), value["node"]


def kill_node_of(cluster, node_id: str) -> None:
    ip = next(ip for ip, found in cluster.node_ids().items() if found == node_id)
    pid = cluster.node_pids.pop(ip)
    os.kill(pid, signal.SIGKILL)
    assert wait_gone([pid], 10) == []


def test_results_lost_with_their_node_are_recomputed_unless_they_cannot_be(cluster):
    n = 1_000_000  # 8 MB: kept in the store of the node that made it
    ref = block.remote(n)
    first = actorlib.get(ref, timeout=60)
    there = NodeAffinitySchedulingStrategy(first["node"], soft=False)
    once = block_once.options(scheduling_strategy=there).remote(n)
    assert actorlib.get(once, timeout=60)["node"] == first["node"]
    here = NodeAffinitySchedulingStrategy(actorlib.get_runtime_context().get_node_id(), soft=False)
    borrower = Borrower.options(scheduling_strategy=here).remote()
    assert actorlib.get(borrower.total.remote([ref]), timeout=60)[1] == first["node"]
    kill_node_of(cluster, first["node"])
    with pytest.raises(actorlib.exceptions.ObjectLostError, match="cannot be recomputed|not the result of a task"):
        actorlib.get(once, timeout=60)  # max_retries=0: it may not run again
    again = actorlib.get(ref, timeout=60)  # the task ran again, on a live node
    assert again["node"] != first["node"] and again["node"] in cluster.node_ids().values()
    assert np.array_equal(again["data"], first["data"])
    total, node = actorlib.get(borrower.total.remote([ref]), timeout=60)  # a borrower reads the new copy
    assert total == n * (n - 1) // 2 and node == again["node"]


def test_every_task_completes_when_a_node_is_killed(cluster):
    refs = [slow_square.remote(i) for i in range(12)]
    poll(lambda: len(actorlib.wait(refs, num_returns=1, timeout=0)[0]) >= 1, timeout=60)
    victim = cluster.node_pids.pop(next(iter(cluster.node_pids)))
    os.kill(victim, signal.SIGKILL)
    results = actorlib.get(refs, timeout=120)
    assert [value for value, _ in results] == [i * i for i in range(12)]
    assert wait_gone([victim], 10) == []


def test_a_restartable_actor_moves_off_a_dead_node(cluster):
    ids = cluster.node_ids()
    actor = Mover.remote()
    first = actorlib.get(actor.node.remote(), timeout=60)
    ip = next(ip for ip, node_id in ids.items() if node_id == first)
    os.kill(cluster.node_pids.pop(ip), signal.SIGKILL)

    def moved():
        try:
            node = actorlib.get(actor.node.remote(), timeout=30)
        except actorlib.exceptions.ActorDiedError as error:
            assert not error.final, str(error)
            return None
        return node if node != first else None

    assert poll(moved, timeout=60) in cluster.node_ids().values()


@actorlib.remote(resources={"pool": 1}, max_retries=1)
def linger(out: str) -> str:
    """The first run writes its pid and lingers; the retry returns at once."""
    node = actorlib.get_runtime_context().get_node_id()
    if not any(Path(out).iterdir()):
        Path(out, str(os.getpid())).write_text(node)
        time.sleep(60)
    return node


def test_a_frozen_node_is_declared_dead_then_fenced_and_its_work_runs_once_elsewhere(cluster, tmp_path):
    cluster.add_node(ip="127.0.0.8", resources={"pool": 1})  # where the task runs again (and the next tests)
    poll(lambda: len(cluster.node_ids()) == 1 + len(cluster.node_pids), timeout=30)
    ref = linger.remote(str(tmp_path))
    # The file exists a moment before its content: wait for both.
    (marker,) = poll(lambda: [p for p in tmp_path.iterdir() if p.read_text()], timeout=60)
    worker, frozen_node = int(marker.name), marker.read_text()
    ip = next(ip for ip, node_id in cluster.node_ids().items() if node_id == frozen_node)
    pid = cluster.node_pids.pop(ip)
    os.kill(pid, signal.SIGSTOP)
    stopped = time.monotonic()
    try:
        poll(lambda: ip not in cluster.node_ids(), timeout=30)
        detected = time.monotonic() - stopped
        assert detected < cluster.node_timeout + 3  # heartbeat timeout, plus a check period
        # Its worker heard the head declare its node dead and stopped, though the node is frozen ...
        assert wait_gone([worker], 10) == [] and psutil.Process(pid).status() == psutil.STATUS_STOPPED
        # ... so the task runs once more, elsewhere, and never finishes twice.
        assert actorlib.get(ref, timeout=60) not in ("", frozen_node)
    finally:
        os.kill(pid, signal.SIGCONT)
    # Thawed, it tries to register again: the head refuses a node it declared dead, and the
    # node stops itself with everything it ran, rather than take work again.
    assert wait_gone([pid], 30) == []
    logs = [p.read_text() for p in Path(cluster.tmp).glob("actorlib-*/session_2*/logs/node.err")]
    (log,) = [log for log in logs if "declared dead by the head" in log]
    assert "the head refused this node: this node was declared dead" in log and "Traceback" not in log


def test_a_head_that_stalls_past_the_heartbeat_timeout_does_not_blame_the_nodes(cluster):
    (head,) = cluster._ready_pids("head.json")
    nodes = dict(cluster.node_pids)
    os.kill(head, signal.SIGSTOP)  # longer than the node timeout, well short of the nodes' grace
    try:
        time.sleep(cluster.node_timeout + 0.5)
    finally:
        os.kill(head, signal.SIGCONT)
    answered = poll(lambda: actorlib.get(slow_square.remote(3), timeout=30), timeout=30)
    assert answered[0] == 9
    # The heartbeats it did not read while stopped do not make it declare anyone dead.
    dead = [n["NodeManagerAddress"] for n in actorlib.nodes() if not n["Alive"] and n["NodeManagerAddress"] in nodes]
    assert dead == [] and all(alive(pid) for pid in nodes.values())


def test_the_head_is_restarted_and_finds_detached_actors_again(cluster):
    actor = Mover.options(name="keeper", lifetime="detached", namespace="ops").remote()
    pid_before = actorlib.get(actor.node.remote(), timeout=60)
    group = placement_group([{"CPU": 1}], name="kept-group", lifetime="detached")
    assert group.wait(30)
    group_nodes = placement_group_table(group)["bundles_to_node_id"]
    (head,) = cluster._ready_pids("head.json")
    os.kill(head, signal.SIGKILL)
    poll(lambda: cluster._ready_pids("head.json") and cluster._ready_pids("head.json")[0] != head, timeout=30)

    def found_again():
        try:
            return actorlib.get(actorlib.get_actor("keeper", namespace="ops").node.remote(), timeout=30)
        except (ValueError, ConnectionError, actorlib.exceptions.ActorDiedError, actorlib.exceptions.GetTimeoutError):
            return None

    assert poll(found_again, timeout=60) == pid_before  # the same actor, on the same node
    assert get_placement_group("kept-group") == group
    row = poll(lambda: (r := placement_group_table(group))["state"] == "CREATED" and r, timeout=30)
    assert row["bundles_to_node_id"] == group_nodes  # the same reservation, on the same node
    remove_placement_group(group)
    poll(lambda: len(cluster.node_ids()) == 1 + len(cluster.node_pids), timeout=30)
    # The keeper holds a node's only "pool", and after the earlier tests' kills that node may be
    # one of the last two: let its pool go, or the task below waits for one (as Ray's would).
    actorlib.kill(actorlib.get_actor("keeper", namespace="ops"))
    # This driver's node lived in the old head's process: it moved to the new head's node, and
    # its tasks run (they failed with WorkerStartError after 30 s before).
    assert actorlib.get(slow_square.remote(5), timeout=60)[0] == 25


OWNER_DRIVER = """
import os, sys, time
from pathlib import Path
import actorlib
from actorlib._core import current
from actorlib.util import placement_group

out = Path(sys.argv[1])
actorlib.init(address=sys.argv[2])

@actorlib.remote(num_cpus=0, resources={"owners": 0.1})  # on a worker node: the head's dies with it
class Held:
    def pid(self):
        return os.getpid()

held = Held.remote()
group = placement_group([{"owners": 0.1}])
assert group.wait(30)
(out / "ready").write_text(f"{actorlib.get(held.pid.remote(), timeout=60)} {group.id.hex()}")
runtime = current()
while runtime.head.reconnects == 0:  # the head went away; we claim our actor and group again
    time.sleep(0.02)
(out / "claimed").write_text("yes")
sys.stdin.read()  # until the test lets us go
"""


@contextlib.contextmanager
def owner_drivers(cluster, *directories) -> Iterator[list[tuple[subprocess.Popen, int, str]]]:
    """Driver processes that each own an actor and a group; killed at the end, pass or fail."""
    env = {**cluster.env, "ACTORLIB_TOKEN_FILE": cluster.token_file}
    drivers = []
    try:
        for directory in directories:
            directory.mkdir()
            drivers.append(subprocess.Popen(
                [sys.executable, "-c", OWNER_DRIVER, str(directory), cluster.address], stdin=subprocess.PIPE, env=env
            ))  # fmt: skip
        started = []
        for driver, directory in zip(drivers, directories):
            ready = poll(lambda: (directory / "ready").exists() and (directory / "ready").read_text(), timeout=60)  # noqa: B023
            pid, pg_hex = ready.split()
            started.append((driver, int(pid), pg_hex))
        yield started
    finally:
        for driver in drivers:
            driver.kill()
            driver.wait(30)
            driver.stdin.close()


def group_state(pg_hex: str) -> str:
    return placement_group_table().get(pg_hex, {}).get("state", "")


def test_after_a_head_restart_owners_claim_their_actors_and_the_rest_die(cluster, tmp_path):
    cluster.add_node(ip="127.0.0.7", resources={"owners": 1})
    with owner_drivers(cluster, tmp_path / "staying", tmp_path / "leaving") as started:
        (staying, staying_actor, staying_group), (leaving, leaving_actor, leaving_group) = started
        (head,) = cluster._ready_pids("head.json")
        os.kill(head, signal.SIGSTOP)  # frozen, it cannot see the next driver go ...
        leaving.kill()
        leaving.wait(30)
        os.kill(head, signal.SIGKILL)  # ... and its successor never heard of that driver
        poll(lambda: cluster._ready_pids("head.json") and cluster._ready_pids("head.json")[0] != head, timeout=30)
        poll(lambda: (tmp_path / "staying" / "claimed").exists(), timeout=60)
        # Once the new head's grace period is over, what nobody claimed dies ...
        assert wait_gone([leaving_actor], 60) == []
        poll(lambda: group_state(leaving_group) in ("REMOVED", ""), timeout=30)
        # ... and what its owner claimed lives on, until that owner exits.
        assert alive(staying_actor) and group_state(staying_group) == "CREATED"
        staying.stdin.close()
        assert staying.wait(60) == 0
        assert wait_gone([staying_actor], 30) == []
        poll(lambda: group_state(staying_group) in ("REMOVED", ""), timeout=30)
    poll(lambda: len(cluster.node_ids()) == 1 + len(cluster.node_pids), timeout=30)


def test_nodes_stop_themselves_when_the_head_is_gone(cluster):
    nodes = list(cluster.node_pids.values())
    (daemon,) = cluster._ready_pids("daemon.json")
    heads = set(cluster._ready_pids("head.json"))
    node_trees = [pid for pid in cluster.processes() if pid != daemon and pid not in heads]
    assert all(alive(pid) for pid in nodes)
    cluster.disconnect()
    os.kill(daemon, signal.SIGKILL)  # the cluster's root: its head dies with it
    assert wait_gone(node_trees, cluster.grace + 10) == []



@actorlib.remote
def wait_for(path: str) -> str:
    while not os.path.exists(path):
        time.sleep(0.01)
    return actorlib.get_runtime_context().get_node_id()


def test_a_lease_request_queued_on_a_node_that_freezes_goes_elsewhere(tmp_path):
    """A task queued on a node (its resource busy there) must not wait for ever when that node
    freezes: the head declares it dead, and the owner's request goes to a node that fits."""
    multi = MultiNode([{"ip": "127.0.0.2", "cpus": 1, "resources": {"r": 1}}], node_timeout=2.0, grace=3.0)
    frozen = multi.node_pids["127.0.0.2"]
    with multi.connected():
        go = str(tmp_path / "go")
        # Another shape than the queued task's: its retry must not make a fresh request for it.
        holder = wait_for.options(resources={"r": 1}, num_cpus=0.5).remote(go)  # takes the only "r"
        poll(lambda: any(t.state == "RUNNING" for t in state.list_tasks(filters=[("name", "=", "wait_for")])), timeout=30)
        queued = wait_for.options(resources={"r": 1}).remote(go)  # spilled to 127.0.0.2, queued there
        poll(lambda: [n.pending for n in state.list_nodes() if n.node_ip == "127.0.0.2"] == [1], timeout=30)
        multi.add_node("127.0.0.3", cpus=1, resources={"r": 1})
        poll(lambda: "127.0.0.3" in multi.node_ids(), timeout=30)
        os.kill(frozen, signal.SIGSTOP)
        try:
            poll(lambda: "127.0.0.2" not in multi.node_ids(), timeout=30)
            open(go, "w").close()
            where = actorlib.get([queued, holder], timeout=60)
            assert set(where) == {multi.node_ids()["127.0.0.3"]}  # both ran (again) on the live node
        finally:
            os.kill(frozen, signal.SIGCONT)

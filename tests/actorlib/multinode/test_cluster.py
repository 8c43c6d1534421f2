"""A head and two nodes on loopback: placement, strategies, objects across nodes, the CLI."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

import actorlib
from actorlib.exceptions import InfeasibleResourcesError, ObjectLostError
from actorlib.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from ..integration.conftest import poll, still


def node_of() -> str:
    return actorlib.get_runtime_context().get_node_id()


@actorlib.remote
def where() -> str:
    return node_of()


@actorlib.remote
class Located:
    def node(self) -> str:
        return node_of()


def test_status_lists_every_node(cluster):
    report = cluster.cli("status", "--address", cluster.address, "-v", env={**cluster.env, "ACTORLIB_TOKEN_FILE": cluster.token_file}).stdout
    assert "Nodes: 3 healthy, 0 unresponsive, 0 dead" in report
    assert "ssd" in report and "gpu_like" in report
    assert report.count("127.0.0.") >= 3


def test_custom_resources_place_work_on_the_right_node(cluster):
    nodes = cluster.node_ids()
    assert actorlib.get(where.options(resources={"ssd": 1}).remote(), timeout=60) == nodes["127.0.0.2"]
    assert actorlib.get(where.options(resources={"gpu_like": 1}).remote(), timeout=60) == nodes["127.0.0.3"]
    actor = Located.options(resources={"gpu_like": 1}).remote()
    assert actorlib.get(actor.node.remote(), timeout=60) == nodes["127.0.0.3"]
    actorlib.kill(actor)


def test_spread_uses_every_node(cluster):
    placed = actorlib.get([where.options(scheduling_strategy="SPREAD").remote() for _ in range(12)], timeout=60)
    assert set(placed) == set(cluster.node_ids().values())


def test_node_affinity(cluster):
    nodes = cluster.node_ids()
    for ip, node_id in nodes.items():
        strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
        assert actorlib.get(where.options(scheduling_strategy=strategy).remote(), timeout=60) == node_id
        actor = Located.options(scheduling_strategy=strategy).remote()
        assert actorlib.get(actor.node.remote(), timeout=60) == node_id
    gone = NodeAffinitySchedulingStrategy("ab" * 16, soft=False)
    with pytest.raises(InfeasibleResourcesError, match="not alive"):
        actorlib.get(where.options(scheduling_strategy=gone).remote(), timeout=60)
    soft = NodeAffinitySchedulingStrategy("ab" * 16, soft=True)
    assert actorlib.get(where.options(scheduling_strategy=soft).remote(), timeout=60) in nodes.values()


def test_infeasible_anywhere_fails_fast(cluster):
    with pytest.raises(InfeasibleResourcesError, match="tpu"):
        actorlib.get(where.options(resources={"tpu": 1}).remote(), timeout=60)


@actorlib.remote
def make_array(mb: int) -> np.ndarray:
    return np.frombuffer(os.urandom(mb * 2**20), dtype=np.uint8)


@actorlib.remote
def digest(array: np.ndarray) -> tuple[str, str]:
    return hashlib.sha256(array).hexdigest(), node_of()


def test_a_large_object_crosses_nodes(cluster):
    nodes = cluster.node_ids()
    ref = make_array.options(resources={"ssd": 1}).remote(50)  # made on 127.0.0.2
    here = actorlib.get(ref, timeout=60)  # read by the driver, on the head's node
    expected = hashlib.sha256(here).hexdigest()
    assert not here.flags.writeable
    remote_digest, node = actorlib.get(digest.options(resources={"gpu_like": 1}).remote(ref), timeout=60)
    assert (remote_digest, node) == (expected, nodes["127.0.0.3"])


def stored_id(ref) -> bytes:
    """The id under which ``ref``'s value is kept in its node's store."""
    from actorlib._core import current

    return current().objects.get(ref.binary()).value.object_id


@actorlib.remote(resources={"ssd": 1})
def held_by_ssd_node(stored_ids: list[bytes]) -> list[bool]:
    from actorlib._core import current
    from actorlib.exceptions import ObjectLostError

    held = []
    for object_id in stored_ids:
        try:
            held.append(current().store.get(object_id) is not None)
        except ObjectLostError:
            held.append(False)
    return held


def test_results_kept_on_another_node_are_freed_when_dropped(cluster):
    refs = [make_array.options(resources={"ssd": 1}).remote(8) for _ in range(3)]  # kept on 127.0.0.2
    assert len(actorlib.get(refs[0], timeout=60)) == 8 * 2**20  # read once, from here
    actorlib.wait(refs, num_returns=3, timeout=60)
    ids = [stored_id(ref) for ref in refs]
    assert actorlib.get(held_by_ssd_node.remote(ids), timeout=60) == [True, True, True]
    del refs
    poll(lambda: actorlib.get(held_by_ssd_node.remote(ids), timeout=60) == [False, False, False], timeout=30)


def test_objects_put_by_a_driver_on_a_cluster_are_freed_when_dropped(cluster):
    from actorlib._core import current

    store = current().store  # the store of the driver's node (the head's)
    ref = actorlib.put(np.zeros(8 * 2**20, dtype=np.uint8))
    object_id = stored_id(ref)
    assert len(store.get(object_id)) == 8 * 2**20
    del ref
    with pytest.raises(ObjectLostError):
        poll(lambda: store.get(object_id) is None, timeout=30)


def store_bytes_sent() -> int:
    """Object bytes every node's store has sent to readers on other nodes so far."""
    import msgspec

    from actorlib._state import StatsResult
    from actorlib.util.state import query

    result = msgspec.msgpack.decode(query("stats", timeout=30), type=StatsResult)
    assert not result.partial, result.partial
    return sum(node.store_bytes_sent for node in result.nodes)


def test_a_consumer_runs_where_its_large_argument_is(cluster):
    nodes = cluster.node_ids()
    ref = make_array.options(resources={"gpu_like": 1}).remote(100)  # 100 MiB made on 127.0.0.3 (2 CPUs)
    actorlib.wait([ref], timeout=60)
    before = store_bytes_sent()
    # The default strategy: without locality it would run on the driver's node (the head's free CPU).
    _, node = actorlib.get(digest.remote(ref), timeout=60)
    assert node == nodes["127.0.0.3"]
    assert store_bytes_sent() == before  # read from its own node's store: nothing crossed nodes
    here = actorlib.get(ref, timeout=60)  # the driver reads it from 127.0.0.3: that does cross
    assert store_bytes_sent() >= before + here.nbytes


def test_a_consumer_submitted_with_its_producer_runs_where_the_result_is(cluster):
    nodes = cluster.node_ids()
    for _ in range(3):
        # 127.0.0.2 has one CPU, held by the producer's lease until the consumer's request comes
        made = make_array.options(resources={"ssd": 1}).remote(4)
        _, node = actorlib.get(digest.remote(made), timeout=60)
        assert node == nodes["127.0.0.2"]


def test_a_consumer_runs_elsewhere_when_the_holder_is_full(cluster, tmp_path):
    nodes = cluster.node_ids()
    ref = make_array.options(resources={"ssd": 1}).remote(1)  # on 127.0.0.2, whose only CPU ...
    actorlib.wait([ref], timeout=60)
    go = tmp_path / "go"
    busy = hold_until.options(resources={"ssd": 1}).remote(str(go))  # ... is then taken
    try:
        poll(lambda: any(t.name == "hold_until" and t.state == "RUNNING" for t in list_tasks()), timeout=60)
        _, node = actorlib.get(digest.remote(ref), timeout=60)  # falls back to a node with room
        assert node != nodes["127.0.0.2"]
    finally:
        go.write_text("go")
    actorlib.get(busy, timeout=60)


def test_actor_calls_and_explicit_strategies_ignore_locality(cluster):
    nodes = cluster.node_ids()
    ref = make_array.options(resources={"ssd": 1}).remote(1)  # on 127.0.0.2
    actorlib.wait([ref], timeout=60)
    actor = Located.options(resources={"gpu_like": 1}).remote()
    assert actorlib.get(actor.node.remote(), timeout=60) == nodes["127.0.0.3"]
    head = NodeAffinitySchedulingStrategy(nodes["127.0.0.1"], soft=False)
    _, node = actorlib.get(digest.options(scheduling_strategy=head).remote(ref), timeout=60)
    assert node == nodes["127.0.0.1"]
    actorlib.kill(actor)


def list_tasks():
    from actorlib.util.state import list_tasks as listing

    return listing(timeout=30)


@actorlib.remote
def borrow_until(path: str, array: np.ndarray, nested: list) -> int:
    import time

    while not os.path.exists(path):
        time.sleep(0.01)
    return len(nested)


def memory_rows(result, object_id: str) -> list:
    return [row for node in result.nodes for row in node.references if row.object_id == object_id]


def test_memory_shows_objects_per_node_and_who_holds_them(cluster, tmp_path):
    import msgspec

    from actorlib.util.state import MemoryResult, memory

    nodes = cluster.node_ids()
    head, ssd, gpu = nodes["127.0.0.1"], nodes["127.0.0.2"], nodes["127.0.0.3"]
    put = actorlib.put(np.zeros(2 * 2**20, dtype=np.uint8))  # in the head node's store
    small = actorlib.put("small")  # inline, in the driver's own table
    made = make_array.options(resources={"ssd": 1}).remote(3)  # in 127.0.0.2's store, owned by the driver
    actorlib.wait([made], timeout=60)
    go = tmp_path / "go"
    running = borrow_until.options(resources={"gpu_like": 1}).remote(str(go), put, [small])  # on 127.0.0.3
    try:
        poll(lambda: any(t.name == "borrow_until" and t.state == "RUNNING" for t in list_tasks()), timeout=60)
        result = poll(lambda: (m := memory(timeout=30)) and any(r.holder.startswith("worker:") for r in memory_rows(m, small.hex())) and m, timeout=30)
        assert not result.partial
        by_node = {node.node_id: node for node in result.nodes}
        assert set(by_node) == {head, ssd, gpu}

        (row,) = memory_rows(result, put.hex())  # held by the driver, and pinned by the running task
        assert (row.node_id, row.owned, row.where, row.stored_on) == (head, True, "STORE", head)
        assert row.size >= 2 * 2**20 and row.reference == "USED_BY_PENDING_TASK" and row.task_refs == 1
        assert row.pid == os.getpid()
        stored = {obj.object_id: obj for obj in by_node[head].stored}
        assert stored[row.stored_id].references == 1 and stored[row.stored_id].size == row.size

        (made_row,) = memory_rows(result, made.hex())  # held on the head node, kept on 127.0.0.2
        assert (made_row.stored_on, made_row.reference, made_row.local_refs) == (ssd, "LOCAL_REFERENCE", 1)
        assert {obj.object_id: obj.references for obj in by_node[ssd].stored}[made_row.stored_id] == 1

        owner_row, borrower_row = sorted(memory_rows(result, small.hex()), key=lambda r: not r.owned)
        assert (owner_row.where, owner_row.node_id, owner_row.reference) == ("INLINE", head, "USED_BY_PENDING_TASK")
        assert (borrower_row.node_id, borrower_row.owned, borrower_row.owner) == (gpu, False, owner_row.owner)
        assert owner_row.borrowers == [borrower_row.holder]  # the worker on 127.0.0.3 borrows it
        assert by_node[head].inline_bytes >= owner_row.size > 0

        env = {**cluster.env, "ACTORLIB_TOKEN_FILE": cluster.token_file}
        text = cluster.cli("memory", "--address", cluster.address, env=env).stdout
        assert all(object_id in text for object_id in (put.hex(), made.hex(), small.hex()))
        assert "USED_BY_PENDING_TASK" in text and "3 nodes:" in text
        brief = cluster.cli("memory", "--address", cluster.address, "--stats-only", env=env).stdout
        assert put.hex() not in brief and brief.count("node ") == 3
        as_json = msgspec.json.decode(cluster.cli("memory", "--address", cluster.address, "--json", env=env).stdout, type=MemoryResult)
        assert {node.node_id for node in as_json.nodes} == {head, ssd, gpu}
        only = cluster.cli("memory", "--address", cluster.address, "--node", ssd[:10], env=env).stdout
        assert f"node {ssd[:12]}" in only and "3.0 MiB" in only and "1 node:" in only and put.hex() not in only
        missing = cluster.cli("memory", "--address", cluster.address, "--node", "zz", env=env, check=False)
        assert missing.returncode != 0 and "no live node" in missing.stderr
    finally:
        go.write_text("go")
    assert actorlib.get(running, timeout=60) == 1
    ids = [put.hex(), made.hex(), small.hex()]
    del put, made, small, running
    poll(lambda: not any(memory_rows(memory(timeout=30), object_id) for object_id in ids), timeout=30)


def test_a_wrong_token_is_refused(cluster):
    result = cluster.cli(
        "status", "--address", cluster.address, check=False, env={**cluster.env, "ACTORLIB_TOKEN": "not-the-token"}
    )
    assert result.returncode != 0
    assert "refused" in (result.stderr + result.stdout)


def test_join_is_fast_and_death_is_detected(cluster):
    import time

    started = time.monotonic()
    pid = cluster.add_node("127.0.0.4", cpus=1, resources={"extra": 1})
    poll(lambda: "127.0.0.4" in cluster.node_ids(), timeout=30)
    joined = time.monotonic() - started
    assert actorlib.get(where.options(resources={"extra": 1}).remote(), timeout=60) == cluster.node_ids()["127.0.0.4"]
    os.kill(pid, 9)
    killed = time.monotonic()
    poll(lambda: "127.0.0.4" not in cluster.node_ids(), timeout=30)
    detected = time.monotonic() - killed
    dead = [n for n in actorlib.nodes() if n["NodeManagerAddress"] == "127.0.0.4"]
    assert dead and not dead[0]["Alive"]
    print(f"join {joined:.2f}s, death detected in {detected:.2f}s")


@actorlib.remote
def hold_until(path: str) -> int:
    import time

    while not os.path.exists(path):
        time.sleep(0.01)
    return os.getpid()


@actorlib.remote
class Pinned:
    def pid(self) -> int:
        return os.getpid()


def ps_titles(pids: list[int]) -> dict[int, str]:
    """``ps -eo pid,args``, as an operator would read it, for these pids."""
    import subprocess

    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True, check=True).stdout
    rows = (line.strip().split(None, 1) for line in out.splitlines()[1:])
    return {int(pid): args.strip() for pid, args in (row for row in rows if len(row) == 2) if int(pid) in pids}


def test_every_process_names_itself_in_ps(cluster, tmp_path):
    import json

    actor = Pinned.options(resources={"ssd": 1}).remote()
    actor_pid = actorlib.get(actor.pid.remote(), timeout=60)
    go = tmp_path / "go"
    running = hold_until.options(resources={"gpu_like": 1}).remote(str(go))

    def titles() -> dict[int, str]:
        return ps_titles(cluster.processes())

    seen = poll(lambda: (t := titles()) and "actorlib::hold_until" in t.values() and t, timeout=60)
    go.write_text("go")
    task_pid = actorlib.get(running, timeout=60)
    ready = {  # the live ones: an earlier test killed a node of its own
        kind: [pid for p in Path(cluster.tmp).glob(f"actorlib-*/session_2*/{kind}") if (pid := json.loads(p.read_text())["pid"]) in seen]
        for kind in ("daemon.json", "head.json", "node.json")
    }
    assert [seen[pid] for pid in ready["daemon.json"]] == ["actorlib::daemon"]
    assert [seen[pid] for pid in ready["head.json"]] == ["actorlib::head 127.0.0.1"]
    assert sorted(seen[pid] for pid in ready["node.json"]) == ["actorlib::node 127.0.0.2", "actorlib::node 127.0.0.3"]
    assert list(seen.values()).count("actorlib::zygote") == 3  # one per node
    assert seen[actor_pid] == "actorlib::Pinned" and seen[task_pid] == "actorlib::hold_until"
    poll(lambda: ps_titles([task_pid]).get(task_pid) == "actorlib::IDLE", timeout=30)  # its task is done
    token = Path(cluster.token_file).read_text().strip()
    for title in seen.values():
        assert title.startswith("actorlib::"), title
        assert token not in title and "{" not in title  # never a token or a config blob
    actorlib.kill(actor)


@actorlib.remote(num_cpus=0, resources={"ssd": 1})
class IdleOnANode:
    """An actor on a worker node (127.0.0.2): it listens to the head from the start."""

    def pid(self) -> int:
        return os.getpid()

    def head_connected(self) -> bool:
        from actorlib._core import current

        channel = current().head.channel
        return channel is not None and not channel.closed

    def asleep(self) -> bool:
        from actorlib._core import current

        return current()._deep_idle

    def call_a_new_actor(self) -> int:
        """Waits on the head for a new actor to come up (a long wait: pings while it lasts)."""
        other = Pinned.options(num_cpus=0).remote()
        pid = actorlib.get(other.pid.remote(), timeout=60)
        actorlib.kill(other)
        return pid


@pytest.mark.slow
def test_an_idle_actor_on_a_worker_node_sleeps(cluster):
    # Before, its head link woke it every PING_EVERY (5 s) to see whether a long wait needed
    # a ping, even with none pending: a thousand idle actors on worker nodes each woken every
    # 5 s. The windows are longer than PING_EVERY, so that wake-up would show in every one.
    from actorlib._core._head_link import PING_EVERY

    actor = IdleOnANode.remote()
    pid = actorlib.get(actor.pid.remote(), timeout=60)
    poll(lambda: actorlib.get(actor.head_connected.remote(), timeout=60), timeout=30)  # what used to wake it
    poll(lambda: actorlib.get(actor.asleep.remote(), timeout=60), timeout=30)
    poll(lambda: still(pid, PING_EVERY + 1), timeout=60, interval=0)
    assert actorlib.get(actor.call_a_new_actor.remote(), timeout=60) > 0  # a long wait came and went
    poll(lambda: actorlib.get(actor.asleep.remote(), timeout=60), timeout=30)
    poll(lambda: still(pid, PING_EVERY + 1), timeout=60, interval=0)
    actorlib.kill(actor)

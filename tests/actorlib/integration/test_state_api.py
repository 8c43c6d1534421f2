"""The state API against the shared local cluster: typed results, and malformed queries refused
with a message while the head keeps serving."""

from __future__ import annotations

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actorlib
from actorlib.util import state

from .conftest import poll


@actorlib.remote
def double(x):
    return 2 * x


def test_listings_and_the_tree_of_a_local_cluster(cluster):
    assert actorlib.get([double.remote(i) for i in range(3)]) == [0, 2, 4]
    job = actorlib.get_runtime_context().get_job_id()
    tasks = poll(lambda: len(state.list_tasks(filters=[("name", "=", "double"), ("job_id", "=", job)], limit=1000)) >= 3)
    assert tasks
    (node,) = state.list_nodes()
    assert node.state == "ALIVE" and node.is_head_node
    tree = state.get_tree(depth=2)
    (only,) = tree.nodes
    assert only.root is not None and only.root.id == "cluster"
    assert all(not grandchild.children for child in only.root.children for grandchild in child.children)
    assert msgspec.json.decode(msgspec.json.encode(tree), type=state.ClusterTree) == tree
    assert state.get_job(job).status == "RUNNING"
    assert state.get_task("ff" * 16) is None


@actorlib.remote(resources={"slot": 1})
def hold_slot(path: str) -> int:
    import os
    import time

    while not os.path.exists(path):
        time.sleep(0.01)
    return 1


@actorlib.remote
class Gate:
    def wait(self, path: str) -> int:
        return actorlib.get(hold_slot.options(resources={}).remote(path))

    def ping(self) -> str:
        return "pong"


def test_tasks_that_have_not_started_are_listed_with_rays_states(cluster, tmp_path):
    go = str(tmp_path / "go")
    holder = hold_slot.remote(go)  # takes the cluster's only "slot"
    poll(lambda: any(t.state == "RUNNING" for t in state.list_tasks(filters=[("name", "=", "hold_slot")], limit=1000)))
    queued = hold_slot.remote(go)  # no slot free: waits for a lease
    waiting = double.remote(holder)  # its argument is not ready
    gate = Gate.remote()
    busy = gate.wait.remote(go)
    behind = gate.ping.remote()  # sent to the actor, which is busy with the call before it
    expected = {
        queued.task_id().hex(): "PENDING_NODE_ASSIGNMENT",
        waiting.task_id().hex(): "PENDING_ARGS_AVAIL",
        behind.task_id().hex(): "SUBMITTED_TO_WORKER",
        busy.task_id().hex(): "RUNNING",
    }

    def seen() -> dict[str, str]:
        return {t.task_id: t.state for t in state.list_tasks(limit=10_000) if t.task_id in expected}

    assert poll(lambda: seen() == expected and True, timeout=30)
    listed = {t.task_id: t for t in state.list_tasks(filters=[("state", "=", "PENDING_ARGS_AVAIL")], limit=1000)}
    pending = listed[waiting.task_id().hex()]
    assert pending.name == "double" and pending.creation_time and not pending.start_time and pending.job_id
    summary = state.summarize_tasks()
    assert summary.by_name["double"].get("PENDING_ARGS_AVAIL", 0) >= 1
    open(go, "w").close()
    assert actorlib.get([holder, queued, waiting, busy, behind], timeout=60) == [1, 1, 2, 1, "pong"]
    finished = {task_id: "FINISHED" for task_id in expected}
    assert poll(lambda: seen() == finished and True, timeout=30)  # reported by their workers; nothing pending is left
    actorlib.kill(gate)


kinds = st.sampled_from(["tree", "summary", "timeline", "actors", "tasks", "nodes", "logs", "bogus", ""])
text = st.text(max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    kind=kinds,
    filters=st.lists(st.tuples(st.sampled_from(["state", "name", "x", ""]), st.sampled_from(["=", "!=", "<", ""]), text), max_size=2),
    limit=st.integers(min_value=-2, max_value=20_000),
    args=st.dictionaries(st.sampled_from(["node", "depth", "of", "id"]), text, max_size=3),
)
def test_malformed_queries_are_refused_with_a_reason(cluster, kind, filters, limit, args):
    try:
        payload = state.query(kind, filters=filters, limit=limit, args=args)
    except state.QueryError as exc:
        assert str(exc)  # names the problem
    else:
        assert isinstance(payload, bytes)
    assert state.list_nodes()[0].state == "ALIVE"  # the head still answers

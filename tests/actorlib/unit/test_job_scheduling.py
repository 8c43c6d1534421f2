"""Where a job's entrypoint runs (pure): head node by default, else a node with the resources free."""

from __future__ import annotations

from actorlib._jobs._scheduling import pick_node
from actorlib._wire import NodeView

HEAD, A, B = b"h" * 16, b"a" * 16, b"b" * 16


def node(
    node_id: bytes, total: dict, available: dict | None = None, *, head: bool = False, alive: bool = True, draining: bool = False
) -> NodeView:
    return NodeView(
        node_id=node_id, address="", store="", hostname="x", ip={HEAD: "127.0.0.1", A: "127.0.0.2", B: "127.0.0.3"}[node_id],
        pid=1, alive=alive, total={**total, "object_store_memory": 1e9}, available=dict(available if available is not None else total),
        session_dir="", is_head=head, draining=draining,
    )  # fmt: skip


CLUSTER = [node(HEAD, {"CPU": 1}, head=True), node(A, {"CPU": 2, "x": 1}), node(B, {"CPU": 4, "x": 1})]


def test_a_job_without_resources_runs_on_the_head_node_even_when_it_is_busy():
    busy = [node(HEAD, {"CPU": 1}, {"CPU": 0}, head=True), *CLUSTER[1:]]
    assert pick_node({}, busy, {}).node_id == HEAD


def test_resources_go_to_the_head_node_if_it_has_them_free_else_to_the_freest_node_that_has_them():
    assert pick_node({"CPU": 1}, CLUSTER, {}).node_id == HEAD
    assert pick_node({"CPU": 2}, CLUSTER, {}).node_id == B  # 4 free CPUs beat 2
    assert pick_node({"x": 1}, CLUSTER, {}).node_id == B
    assert pick_node({"x": 1}, CLUSTER, {B: {"x": 1}}).node_id == A  # what was just sent to B holds its x


def test_no_room_now_waits_and_says_for_what():
    full = [CLUSTER[0], node(A, {"CPU": 2, "x": 1}, {"CPU": 2, "x": 0})]
    choice = pick_node({"x": 1}, full, {})
    assert choice.node_id is None and not choice.infeasible
    assert choice.waiting == "waiting for x=1 to be free on a node that has it: 127.0.0.2 (CPU=2, x=0)"


def test_what_no_live_node_could_ever_have_is_infeasible_naming_the_resource():
    choice = pick_node({"x": 2, "CPU": 1}, CLUSTER, {})
    assert choice.node_id is None and "x=2 (the most any node has: 1)" in choice.infeasible and "CPU" not in choice.infeasible.split("(nodes")[0]
    together = pick_node({"CPU": 4, "x": 1, "GPU": 0.0}, [CLUSTER[0], node(A, {"CPU": 2, "x": 1}), node(B, {"CPU": 4})], {})
    assert "all of CPU=4, x=1 at once" in together.infeasible
    dead = [CLUSTER[0], node(A, {"CPU": 2, "x": 1}, alive=False)]
    assert pick_node({"x": 1}, dead, {}).infeasible  # a dead node's resources do not count


def test_a_draining_node_takes_no_entrypoint_and_the_autoscaler_may_add_one_that_fits():
    draining = [CLUSTER[0], node(A, {"CPU": 2, "x": 1}, draining=True)]
    assert pick_node({"x": 1}, draining, {}).infeasible  # nothing else has x, and nothing can be added
    choice = pick_node({"x": 1}, draining, {}, scalable=[{"CPU": 4}, {"CPU": 1, "x": 2}])
    assert choice.node_id is None and choice.waiting == "waiting for the autoscaler to add a node with x=1"
    assert pick_node({"x": 3}, draining, {}, scalable=[{"CPU": 1, "x": 2}]).infeasible

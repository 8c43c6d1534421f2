"""The scaling policy, pure: hypothesis drives demands, nodes and the clock (ages in seconds)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from actorlib._node._resources import fits
from actorlib._autoscaler._policy import Decision, Demand, Inputs, Limits, Node, NodeType, plan

TYPES = {
    "cpu": NodeType("cpu", {"CPU": 2}, min_workers=0, max_workers=3),
    "big": NodeType("big", {"CPU": 8}, min_workers=0, max_workers=1),
    "gpu": NodeType("gpu", {"CPU": 4, "GPU": 1}, min_workers=0, max_workers=2),
}
LIMITS = Limits(TYPES, max_workers=4, idle_timeout_s=10, cooldown_s=5, drain_timeout_s=30)
HEAD = Node(b"head", "", {"CPU": 2}, {"CPU": 0}, busy=2)

shapes = st.fixed_dictionaries(
    {"CPU": st.sampled_from([0.5, 1, 2, 3, 8, 9])},
    optional={"GPU": st.sampled_from([1, 2]), "TPU": st.just(1)},
)


@st.composite
def workers(draw: st.DrawFn) -> list[Node]:
    nodes = []
    for i in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(sorted(TYPES)))
        total = dict(TYPES[name].resources)
        busy = draw(st.integers(0, 2))
        free = {k: (v if not busy else draw(st.sampled_from([0, v]))) for k, v in total.items()}
        draining = draw(st.booleans())
        nodes.append(
            Node(
                bytes([i + 1]), name, total, free, busy=busy, idle_s=0 if busy else draw(st.floats(0, 100)),
                draining=draining, drained=draining and draw(st.booleans()), draining_s=draw(st.floats(0, 60)),
            )
        )  # fmt: skip
    return nodes


@st.composite
def inputs(draw: st.DrawFn) -> Inputs:
    demands = [Demand.of(s) for s in draw(st.lists(shapes, max_size=12))]
    if draw(st.booleans()):
        demands.append(Demand(tuple(draw(st.lists(shapes, min_size=2, max_size=3))), strict_spread=True))
    return Inputs(
        demands=demands,
        nodes=[HEAD, *draw(workers())],
        requested=draw(st.lists(shapes, max_size=3)),
        launching=draw(st.dictionaries(st.sampled_from(sorted(TYPES)), st.integers(0, 2))),
        terminating=draw(st.dictionaries(st.sampled_from(sorted(TYPES)), st.integers(0, 1))),
        backing_off=frozenset(draw(st.sets(st.sampled_from(sorted(TYPES))))),
        since_scale_up=draw(st.floats(0, 100)),
    )


def count(inputs: Inputs, decision: Decision, name: str | None = None) -> int:
    names = [name] if name else list(TYPES)
    live = sum(1 for n in inputs.nodes if n.node_type in names)
    return live + sum(inputs.launching.get(t, 0) + inputs.terminating.get(t, 0) + decision.launch.get(t, 0) for t in names)


@settings(max_examples=400, deadline=None)
@given(inputs())
def test_max_workers_is_never_exceeded(given_inputs: Inputs) -> None:
    decision = plan(given_inputs, LIMITS)
    if decision.launch:
        assert count(given_inputs, decision) <= LIMITS.max_workers
    for name, launched in decision.launch.items():
        assert launched > 0
        assert count(given_inputs, decision, name) <= TYPES[name].max_workers
        assert name not in given_inputs.backing_off


@settings(max_examples=400, deadline=None)
@given(inputs())
def test_only_drained_idle_nodes_are_stopped_and_only_idle_ones_drained(given_inputs: Inputs) -> None:
    decision = plan(given_inputs, LIMITS)
    nodes = {n.node_id: n for n in given_inputs.nodes}
    for node_id in decision.terminate:
        node = nodes[node_id]
        assert node.draining and node.drained and node.busy == 0
    for node_id in decision.drain:
        node = nodes[node_id]
        assert node.node_type in TYPES and not node.draining and node.busy == 0
        assert node.idle_s >= LIMITS.idle_timeout_s
    if decision.drain:  # no flapping: never while launching, nor during the cool-down after a launch
        assert not decision.launch and given_inputs.since_scale_up >= LIMITS.cooldown_s
    assert not set(decision.terminate) & set(decision.undrain)
    assert set(decision.undrain) <= {n.node_id for n in given_inputs.nodes if n.draining}


@settings(max_examples=300, deadline=None)
@given(st.lists(shapes, max_size=12))
def test_launched_nodes_hold_the_demand_and_nothing_is_launched_twice(demand_shapes: list[dict]) -> None:
    roomy = Limits({k: NodeType(k, t.resources, 0, 100) for k, t in TYPES.items()}, max_workers=300, idle_timeout_s=10)
    first = plan(Inputs([Demand.of(s) for s in demand_shapes], [HEAD]), roomy)
    feasible = [s for s in demand_shapes if any(fits(s, t.resources) for t in TYPES.values())]
    assert len(first.infeasible) == len(demand_shapes) - len(feasible)
    assert not first.unmet
    # The same demand while those launches are in flight asks for nothing more.
    again = plan(Inputs([Demand.of(s) for s in demand_shapes], [HEAD], launching=first.launch), roomy)
    assert again.launch == {}
    assert sum(first.launch.values()) <= len(feasible)


def test_gpu_work_gets_a_gpu_node_and_cpu_work_does_not():
    assert plan(Inputs([Demand.of({"CPU": 1})], [HEAD]), LIMITS).launch == {"cpu": 1}
    assert plan(Inputs([Demand.of({"CPU": 1, "GPU": 1})], [HEAD]), LIMITS).launch == {"gpu": 1}
    # CPU work that fits beside the GPU work shares its node rather than launching another
    both = plan(Inputs([Demand.of({"CPU": 1}), Demand.of({"CPU": 1, "GPU": 1})], [HEAD]), LIMITS)
    assert both.launch == {"gpu": 1}


def test_strict_spread_bundles_need_distinct_nodes():
    decision = plan(Inputs([Demand(({"CPU": 1}, {"CPU": 1}), strict_spread=True)], [HEAD]), LIMITS)
    assert decision.launch == {"cpu": 2}


def test_request_resources_is_a_floor_on_capacity_not_on_free_room():
    busy_worker = Node(b"w", "cpu", {"CPU": 2}, {"CPU": 0}, busy=2)
    decision = plan(Inputs([], [HEAD, busy_worker], requested=[{"CPU": 2}] * 3), LIMITS)
    assert decision.launch == {"cpu": 1}  # the head and the busy worker count; one more is needed


def test_min_workers_are_kept():
    limits = Limits({"cpu": NodeType("cpu", {"CPU": 2}, min_workers=2, max_workers=3)}, max_workers=3, idle_timeout_s=1)
    assert plan(Inputs([], [HEAD]), limits).launch == {"cpu": 2}
    idle = [Node(bytes([i]), "cpu", {"CPU": 2}, {"CPU": 2}, idle_s=99) for i in range(3)]
    assert len(plan(Inputs([], [HEAD, *idle]), limits).drain) == 1


def test_a_draining_node_is_called_back_rather_than_a_new_one_launched():
    drained = Node(b"w", "cpu", {"CPU": 2}, {"CPU": 2}, idle_s=99, draining=True, drained=True)
    decision = plan(Inputs([Demand.of({"CPU": 1})], [HEAD, drained]), LIMITS)
    assert decision.undrain == [b"w"] and not decision.launch and not decision.terminate


def test_a_drain_that_does_not_take_is_called_off_not_forced():
    stuck = Node(b"w", "cpu", {"CPU": 2}, {"CPU": 1}, busy=1, draining=True, drained=True, draining_s=31)
    decision = plan(Inputs([], [HEAD, stuck]), LIMITS)
    assert decision.undrain == [b"w"] and decision.terminate == []


def test_a_burst_scales_up_then_down_after_the_idle_timeout_without_flapping():
    """Simulated time: 6 one-CPU tasks on a 2-CPU head; 2-CPU workers come, run them, idle, go."""
    limits = Limits({"cpu": TYPES["cpu"]}, max_workers=3, idle_timeout_s=10, cooldown_s=5)
    launched, drained, stopped = 0, set(), set()
    workers: dict[bytes, Node] = {}
    waiting = 4  # the head runs 2 of the 6
    last_up = -1e9
    for now in range(0, 60):
        head = Node(b"head", "", {"CPU": 2}, {"CPU": 0 if now < 20 else 2}, busy=2 if now < 20 else 0)
        inputs = Inputs([Demand.of({"CPU": 1})] * waiting, [head, *workers.values()], since_scale_up=now - last_up)
        decision = plan(inputs, limits)
        for _ in range(decision.launch.get("cpu", 0)):  # joins at once, takes 2 waiting tasks
            launched += 1
            node_id = bytes([launched])
            taken = min(2, waiting)
            waiting -= taken
            workers[node_id] = Node(node_id, "cpu", {"CPU": 2}, {"CPU": 2 - taken}, busy=taken)
            last_up = now
        for node_id in decision.drain:
            drained.add(node_id)
            workers[node_id] = Node(node_id, "cpu", {"CPU": 2}, {"CPU": 2}, idle_s=workers[node_id].idle_s, draining=True, drained=True)
        for node_id in decision.terminate:
            stopped.add(node_id)
            del workers[node_id]
        for node_id, node in list(workers.items()):
            if node.draining:
                continue
            done = now >= 20  # the tasks finish at t=20: the workers idle from then on
            idle_s = (now - 20) if done else 0
            workers[node_id] = Node(node_id, "cpu", {"CPU": 2}, {"CPU": 2} if done else node.available, busy=0 if done else node.busy, idle_s=idle_s)
        if now < 20:
            assert not decision.drain  # busy nodes are never drained
    assert launched == 2 and stopped == drained == {b"\x01", b"\x02"}

"""Locality-aware placement, the pure parts: which node holds most argument bytes, and when a
node sends a lease request on to that node instead of deciding itself."""

from __future__ import annotations

from actorlib._core._submitter import holder_of
from actorlib._node._leases import LeaseManager, _Request
from actorlib._wire import Inline, NodeView, RequestLease, Stored


def stored(node: bytes, size: int) -> Stored:
    return Stored(object_id=b"o" * 16, node_id=node, size=size, store="")


def view(node: bytes, cpus: float = 1.0, alive: bool = True, draining: bool = False) -> NodeView:
    return NodeView(
        node_id=node, address=f"addr-{node.decode()}", store="", hostname="h", ip="127.0.0.1", pid=1, alive=alive,
        total={"CPU": cpus}, available={"CPU": cpus}, session_dir="", draining=draining,
    )  # fmt: skip


def test_the_holder_of_most_bytes_wins():
    assert holder_of([Inline(data=b"x"), stored(b"a", 10), stored(b"b", 6), stored(b"b", 6)]) == b"b"
    assert holder_of([stored(b"a", 10), stored(b"b", 10)]) == b"a"  # a tie: the first met
    assert holder_of([Inline(data=b"x")]) == b""  # only small (inline) arguments: no preference


class Channel:
    closed = False


def request(locality: bytes, shape: dict | None = None, **fields) -> _Request:
    message = RequestLease(req=1, shape=shape or {"CPU": 1.0}, env={}, job_id="j", name="f", locality=locality, **fields)
    return _Request(message, Channel())  # type: ignore[arg-type]


def manager(*others: NodeView) -> LeaseManager:
    return LeaseManager({"CPU": 1.0}, pool=None, node_id=b"me", cluster=lambda: [view(b"me"), *others])  # type: ignore[arg-type]


def test_a_request_goes_to_the_node_holding_its_arguments():
    assert manager(view(b"b"))._holder(request(b"b")).node_id == b"b"


def test_the_holder_is_skipped_when_it_cannot_take_the_task():
    leases = manager(view(b"dead", alive=False), view(b"drain", draining=True), view(b"small", cpus=1.0))
    assert leases._holder(request(b"me")) is None  # it is here: decide here
    assert leases._holder(request(b"")) is None  # no large arguments
    assert leases._holder(request(b"unknown")) is None
    assert leases._holder(request(b"dead")) is None
    assert leases._holder(request(b"drain")) is None
    assert leases._holder(request(b"small", shape={"CPU": 2.0})) is None  # could never run it
    assert leases._holder(request(b"small", node_affinity=b"me")) is None  # an explicit placement wins


def test_the_holder_keeps_a_request_a_little_before_sending_it_where_there_is_room():
    from actorlib._node._leases import LOCALITY_WAIT

    free = view(b"free")
    leases = manager(free)
    leases.available["CPU"] = 0.0  # busy here
    mine, other = request(b"me"), request(b"")
    assert leases._elsewhere(other).node_id == b"free"  # no preference: off to the free node at once
    assert leases._elsewhere(mine) is None  # its arguments are here: queued here first
    room = {b"free": {"CPU": 1.0}}
    assert leases._better_node(mine, [free], room) is None  # still young
    mine.since -= LOCALITY_WAIT
    assert leases._better_node(mine, [free], room).node_id == b"free"  # then it falls back

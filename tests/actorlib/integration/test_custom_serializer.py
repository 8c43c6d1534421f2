"""``actorlib.util.register_serializer`` / ``deregister_serializer``, as in Ray (compared side by
side with Ray 2.60): a registered type crosses to tasks as ``serializer(x)`` and is rebuilt by
the deserializer, which travels with the data; registrations are the registering process's
own, for that exact type."""

from __future__ import annotations

import threading

import pytest

import actorlib
from actorlib.exceptions import SerializationError
from actorlib.util import deregister_serializer, register_serializer

pytestmark = pytest.mark.usefixtures("cluster")


class Conn:
    """Cannot be pickled: it holds a lock."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.lock = threading.Lock()


class SubConn(Conn):
    pass


@pytest.fixture
def registered():
    register_serializer(Conn, serializer=lambda c: c.url, deserializer=Conn)
    yield
    deregister_serializer(Conn)


@actorlib.remote
def url_of(conn: Conn) -> str:
    assert isinstance(conn, Conn) and conn.lock.acquire(blocking=False)  # rebuilt: a fresh lock
    return conn.url


@actorlib.remote
def make(url: str, register: bool) -> Conn:
    if register:
        register_serializer(Conn, serializer=lambda c: c.url, deserializer=Conn)
    return Conn(url)


def test_a_type_pickle_refuses_crosses_once_registered_and_not_after(registered):
    assert actorlib.get(url_of.remote(Conn("a")), timeout=60) == "a"
    assert actorlib.get(actorlib.put(Conn("b")), timeout=60).url == "b"
    assert actorlib.get(url_of.remote(actorlib.put(Conn("c"))), timeout=60) == "c"
    deregister_serializer(Conn)
    with pytest.raises(SerializationError, match=r"url_of\(\)\[0\]\[0\]\.lock.*cannot pickle '_thread.lock'"):
        url_of.remote(Conn("d"))


def test_only_the_registering_process_uses_it_and_only_for_that_exact_type(registered):
    with pytest.raises(SerializationError, match="could not serialize the return value of make"):
        actorlib.get(make.remote("e", False), timeout=60)  # the worker did not register it
    assert actorlib.get(make.remote("f", True), timeout=60).url == "f"  # it did: the driver needs nothing
    with pytest.raises(SerializationError, match=r"\.lock"):
        url_of.remote(SubConn("g"))  # a subclass is not the registered type, as in Ray


def test_a_serializer_that_fails_is_named_as_the_culprit():
    register_serializer(Conn, serializer=lambda c: 1 / 0, deserializer=Conn)
    try:
        with pytest.raises(SerializationError, match=r"url_of\(\)\[0\]\[0\]: <.*Conn object.*ZeroDivisionError"):
            url_of.remote(Conn("h"))
    finally:
        deregister_serializer(Conn)


def test_bad_registrations_are_refused_with_what_is_wrong():
    with pytest.raises(TypeError, match="needs a class, not int"):
        register_serializer(3, serializer=str, deserializer=int)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="deserializer must be callable"):
        register_serializer(Conn, serializer=str, deserializer="Conn")  # type: ignore[arg-type]
    deregister_serializer(Conn)  # none registered: nothing happens

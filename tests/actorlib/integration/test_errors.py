"""Exceptions raised in tasks, as callers see them."""

from __future__ import annotations

import threading

import pytest

import actorlib
from actorlib.exceptions import ActorlibError, RayTaskError, SerializationError, TaskError

pytestmark = pytest.mark.usefixtures("cluster")


class CustomError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"failed with code {code}")
        self.code = code


@actorlib.remote
def fail(kind: str):
    if kind == "value":
        raise ValueError("bad value")
    if kind == "custom":
        raise CustomError(42)
    if kind == "key":
        return {}["missing"]
    return "fine"


@actorlib.remote
def use(value):
    return value


@actorlib.remote
def get_inner(kind):
    return actorlib.get(fail.remote(kind))


def test_error_is_a_task_error_and_the_original_class():
    with pytest.raises(ValueError, match="bad value") as info:
        actorlib.get(fail.remote("value"))
    error = info.value
    assert isinstance(error, TaskError) and isinstance(error, RayTaskError) and isinstance(error, ActorlibError)
    assert "Traceback" in error.traceback_str and 'raise ValueError("bad value")' in error.traceback_str
    assert "fail() (pid=" in str(error)
    assert isinstance(error.cause, ValueError)


def test_original_attributes_are_kept():
    with pytest.raises(CustomError) as info:
        actorlib.get(fail.remote("custom"))
    assert info.value.code == 42


def test_key_error():
    with pytest.raises(KeyError):
        actorlib.get(fail.remote("key"))


def test_errors_propagate_through_dependent_tasks():
    with pytest.raises(ValueError, match="bad value"):
        actorlib.get(use.remote(use.remote(fail.remote("value"))))


def test_errors_crossing_two_tasks_keep_both_tracebacks():
    with pytest.raises(ValueError) as info:
        actorlib.get(get_inner.remote("value"))
    text = info.value.traceback_str
    assert 'raise ValueError("bad value")' in text and "actorlib.get(fail.remote(kind))" in text


def test_unserializable_argument_is_named():
    with pytest.raises(SerializationError, match=r"\[0\]\['lock'\].*lock") as info:
        use.remote({"lock": threading.Lock()})
    assert isinstance(info.value, TypeError)


def test_unserializable_result_is_named():
    @actorlib.remote
    def make_lock():
        return threading.Lock()

    with pytest.raises(SerializationError, match="return value of .*make_lock"):
        actorlib.get(make_lock.remote())


def test_a_worker_survives_a_task_error():
    actorlib.get([fail.remote("other") for _ in range(4)])
    with pytest.raises(ValueError):
        actorlib.get(fail.remote("value"))
    assert actorlib.get(fail.remote("other")) == "fine"

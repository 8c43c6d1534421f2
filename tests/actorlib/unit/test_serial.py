"""User values and errors crossing process boundaries: what fails is named, what was raised is raised."""

from __future__ import annotations

import socket
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from actorlib import exceptions
from actorlib._serial import box, box_system, boxed_type, deserialize, deserialize_inline, export, serialize, unbox
from actorlib._wire import ErrorValue
from actorlib.exceptions import ActorlibError, SerializationError, TaskError

# ---- values --------------------------------------------------------------------------------


def test_values_round_trip_inline() -> None:
    value = {"a": [1, 2.5, "x", b"y", None], "b": (True, {3})}
    assert deserialize_inline(serialize(value).to_inline()) == value


def _generator() -> Iterator[int]:
    yield 1


def unpicklable(kind: str, sock: socket.socket) -> Any:
    return {
        "lock": {"a": [1, threading.Lock()]},
        "generator": [0, 1, {"gen": _generator()}],
        "socket": ("ok", types.SimpleNamespace(conn=sock)),
    }[kind]


@pytest.mark.parametrize(
    ("kind", "path", "type_name"),
    [("lock", "value['a'][1]", "lock"), ("generator", "value[2]['gen']", "generator"), ("socket", "value[1].conn", "socket")],
)
def test_an_unpicklable_part_is_named_by_path_and_type(kind: str, path: str, type_name: str) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock, pytest.raises(SerializationError) as info:
        serialize(unpicklable(kind, sock))
    message = str(info.value)
    assert f"could not serialize {path}:" in message
    assert type_name in message
    assert isinstance(info.value, TypeError)


def test_the_path_starts_with_what_was_being_serialized() -> None:
    with pytest.raises(SerializationError, match=r"argument 2\['k'\]"):
        serialize({"k": threading.Lock()}, what="argument 2")


def test_an_unpicklable_top_level_value_is_named() -> None:
    with pytest.raises(SerializationError, match=r"could not serialize value: <generator"):
        serialize(_generator())


def test_garbage_does_not_deserialize() -> None:
    with pytest.raises(SerializationError, match="could not deserialize"):
        deserialize(b"this is not a pickle")


def test_export_of_an_unpicklable_function_names_it() -> None:
    lock = threading.Lock()

    def uses_a_lock() -> None:
        with lock:
            pass

    with pytest.raises(SerializationError, match="uses_a_lock"):
        export(uses_a_lock, "uses_a_lock")


def test_export_is_content_addressed() -> None:
    def square(x: int) -> int:
        return x * x

    first, second = export(square, "square"), export(square, "square")
    assert first.fn_id == second.fn_id
    assert deserialize(first.blob)(7) == 49


# ---- errors --------------------------------------------------------------------------------


def raised(exc: BaseException) -> BaseException:
    """``exc`` with a traceback, as a task would have raised it."""
    try:
        raise exc
    except BaseException as caught:
        return caught


def failing_task() -> None:
    raise ValueError("remote boom")


def run(fn: Callable[[], Any], name: str) -> ErrorValue:
    """Run ``fn`` as a task would and box what it raises."""
    try:
        fn()
    except BaseException as exc:
        return box(exc, name)
    raise AssertionError("the task did not fail")


def test_a_boxed_value_error_unboxes_to_a_task_error_that_is_a_value_error() -> None:
    error = unbox(run(failing_task, "failing_task"))
    assert isinstance(error, TaskError)
    assert isinstance(error, ValueError)
    assert error.args == ("remote boom",)
    assert error.function_name == "failing_task"
    assert "in failing_task" in error.traceback_str
    assert 'raise ValueError("remote boom")' in error.traceback_str
    assert "remote boom" in str(error)
    assert error.traceback_str.rstrip() in str(error)
    assert boxed_type(run(failing_task, "failing_task")) is ValueError


def test_an_exception_of_a_class_defined_in_a_function_unboxes_with_its_message() -> None:
    class LocalError(Exception):
        pass

    def task() -> None:
        raise LocalError("local trouble")

    error = unbox(run(task, "task"))
    assert isinstance(error, TaskError)
    assert "local trouble" in str(error)
    assert type(error.cause).__name__ == "LocalError"


def test_an_exception_that_cannot_be_rebuilt_unboxes_with_its_message() -> None:
    class TwoArgs(Exception):
        def __init__(self, a: str, b: str) -> None:
            super().__init__(f"{a} and {b}")  # args no longer match __init__: unpickling fails

    def task() -> None:
        raise TwoArgs("salt", "pepper")

    error = unbox(run(task, "task"))
    assert isinstance(error, TaskError)
    assert "salt and pepper" in str(error)
    assert "TwoArgs" in str(error)


@pytest.fixture
def vanishing_module() -> Iterator[types.ModuleType]:
    """A module importable now but not where the error is unboxed (as on another machine)."""
    module = types.ModuleType("actorlib_test_vanishing_module")
    exec("class GoneError(Exception):\n    pass\n", module.__dict__)
    sys.modules[module.__name__] = module
    try:
        yield module
    finally:
        sys.modules.pop(module.__name__, None)


def test_an_exception_whose_class_is_missing_here_unboxes_with_its_message(vanishing_module: types.ModuleType) -> None:
    boxed = box(raised(vanishing_module.GoneError("lost in transit")), "task")
    del sys.modules[vanishing_module.__name__]
    error = unbox(boxed)
    assert isinstance(error, TaskError)
    assert "lost in transit" in str(error)
    assert "GoneError" in str(error)


SYSTEM_ERRORS = [
    exceptions.WorkerCrashedError("the worker died"),
    exceptions.TaskCancelledError("cancelled"),
    exceptions.OwnerDiedError("owner gone"),
    exceptions.ObjectFreedError("freed"),
    exceptions.ObjectStoreFullError("full"),
    exceptions.GetTimeoutError("timed out"),
    exceptions.ActorDiedError("dead actor"),
]


@pytest.mark.parametrize("error", SYSTEM_ERRORS, ids=lambda e: type(e).__name__)
def test_a_boxed_system_error_unboxes_to_the_same_class(error: ActorlibError) -> None:
    for boxed in (box_system(error), box(raised(error), "task")):
        unboxed = unbox(boxed)
        assert type(unboxed) is type(error)
        assert not isinstance(unboxed, TaskError)
        assert unboxed.args == error.args
        assert boxed_type(boxed) is type(error)


def test_a_failure_crossing_two_tasks_keeps_both_tracebacks() -> None:
    def inner_task() -> None:
        raise KeyError("deep key")

    first = unbox(run(inner_task, "inner_task"))

    def outer_task() -> None:
        raise first  # as get() would raise it inside the outer task

    second = unbox(run(outer_task, "outer_task"))
    assert isinstance(second, TaskError)
    assert isinstance(second, KeyError)
    assert second.function_name == "outer_task"
    assert "deep key" in str(second)
    assert "in inner_task" in str(second)
    assert "in outer_task" in str(second)
    assert str(second).index("in inner_task") < str(second).index("in outer_task")


def test_unreadable_error_data_still_unboxes_to_a_task_error() -> None:
    error = unbox(ErrorValue(data=b"not a pickle"))
    assert isinstance(error, TaskError)
    assert "could not be deserialized" in str(error)

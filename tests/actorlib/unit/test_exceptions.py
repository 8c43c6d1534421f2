"""The exception tree: TaskError doubles as its cause's class, pickles, and the drawn tree is true."""

from __future__ import annotations

import builtins
import errno
import pickle
import re
from typing import Any

import cloudpickle
import pytest

import actorlib.exceptions as exceptions
from actorlib.exceptions import (
    ActorError,
    ActorlibError,
    GetTimeoutError,
    InfeasibleResourcesError,
    NotInitializedError,
    SerializationError,
    TaskError,
)

REMOTE_TB = 'Traceback (most recent call last):\n  File "job.py", line 3, in work\n    raise ...\n'


class CustomInit(Exception):
    """A user exception whose __init__ takes other arguments than Exception's."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(code, detail)
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return f"error {self.code}: {self.detail}"


def with_extra(cause: BaseException, **attrs: Any) -> BaseException:
    for name, value in attrs.items():
        setattr(cause, name, value)
    return cause


CAUSES: dict[str, BaseException] = {
    "ValueError": ValueError("bad value"),
    "KeyError": KeyError("missing"),
    "FileNotFoundError": FileNotFoundError(errno.ENOENT, "No such file", "/data/x"),
    "ConnectionResetError": ConnectionResetError("reset by peer"),
    "custom-init": CustomInit(42, "the answer"),
    "extra-attributes": with_extra(RuntimeError("with extras"), status=503, payload={"k": [1, 2]}),
}
ids = list(CAUSES)


def remote(cause: BaseException) -> TaskError:
    return TaskError("work", REMOTE_TB, cause, pid=1234, ip="10.0.0.7").as_instanceof_cause()


def user_attrs(exc: BaseException) -> dict[str, Any]:
    return {k: v for k, v in vars(exc).items() if k not in ("function_name", "traceback_str", "cause", "pid", "ip")}


@pytest.mark.parametrize("cause", CAUSES.values(), ids=ids)
def test_is_a_task_error_an_actorlib_error_and_the_cause(cause: BaseException) -> None:
    error = remote(cause)
    assert isinstance(error, TaskError)
    assert isinstance(error, ActorlibError)
    assert isinstance(error, type(cause))
    assert error.cause is cause
    with pytest.raises(type(cause)):
        raise error


@pytest.mark.parametrize("cause", CAUSES.values(), ids=ids)
def test_keeps_args_and_attributes(cause: BaseException) -> None:
    error = remote(cause)
    assert error.args == cause.args
    assert user_attrs(error) == vars(cause)
    assert (error.function_name, error.traceback_str, error.pid, error.ip) == ("work", REMOTE_TB, 1234, "10.0.0.7")


def test_keeps_oserror_fields() -> None:
    cause = FileNotFoundError(errno.ENOENT, "No such file", "/data/x")
    error = remote(cause)
    assert (error.errno, error.strerror, error.filename) == (errno.ENOENT, "No such file", "/data/x")


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
@pytest.mark.parametrize("cause", CAUSES.values(), ids=ids)
def test_survives_a_pickle_round_trip_keeping_both_classes(cause: BaseException, dumps: Any) -> None:
    error = pickle.loads(dumps(remote(cause)))
    assert isinstance(error, TaskError)
    assert isinstance(error, type(cause))
    assert error.args == cause.args
    assert user_attrs(error) == vars(cause)
    assert type(error.cause) is type(cause)
    assert (error.function_name, error.traceback_str, error.pid, error.ip) == ("work", REMOTE_TB, 1234, "10.0.0.7")
    assert str(error) == str(remote(cause))


@pytest.mark.parametrize("cause", CAUSES.values(), ids=ids)
def test_str_has_the_cause_and_the_remote_traceback(cause: BaseException) -> None:
    text = str(remote(cause))
    assert str(cause) in text
    assert type(cause).__name__ in text
    assert REMOTE_TB.rstrip() in text
    assert "work()" in text
    assert "pid=1234" in text


def test_without_a_cause_it_stays_a_plain_task_error() -> None:
    error = TaskError("work", REMOTE_TB, None)
    assert error.as_instanceof_cause() is error
    assert "task failed" in str(error)
    assert REMOTE_TB.rstrip() in str(error)
    assert type(pickle.loads(pickle.dumps(error))) is TaskError


def test_a_cause_whose_layout_cannot_be_combined_still_gives_a_task_error() -> None:
    class Slotted(Exception):
        __slots__ = ("code",)

    cause = Slotted("slotted message")
    error = TaskError("work", REMOTE_TB, cause).as_instanceof_cause()
    assert isinstance(error, TaskError)
    assert error.cause is cause
    assert "slotted message" in str(error)


def test_a_task_error_cause_is_not_wrapped_twice() -> None:
    inner = remote(ValueError("inner"))
    outer = TaskError("outer", "tb", inner)
    assert outer.as_instanceof_cause() is outer


def test_the_same_cause_class_gives_the_same_dual_class() -> None:
    assert type(remote(ValueError("a"))) is type(remote(ValueError("b")))


# ---- the rest of the tree ----------------------------------------------------------------


def test_builtin_bases() -> None:
    assert issubclass(GetTimeoutError, TimeoutError)
    assert issubclass(InfeasibleResourcesError, ValueError)
    assert issubclass(SerializationError, TypeError)
    assert issubclass(NotInitializedError, RuntimeError)
    with pytest.raises(TimeoutError):
        raise GetTimeoutError("get timed out")


def test_rays_names_are_the_same_classes() -> None:
    assert exceptions.RayError is ActorlibError
    assert exceptions.RayTaskError is TaskError
    assert exceptions.RayActorError is ActorError


@pytest.mark.parametrize("name", [n for n in exceptions.__all__ if n not in ("TaskError", "RayTaskError")])
@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_every_other_error_pickles(name: str, dumps: Any) -> None:
    cls = getattr(exceptions, name)
    error = pickle.loads(dumps(cls("what happened")))
    assert type(error) is cls
    assert str(error) == "what happened"


def test_every_public_name_is_an_actorlib_error() -> None:
    for name in exceptions.__all__:
        assert issubclass(getattr(exceptions, name), ActorlibError), name


# ---- the tree in the module docstring ---------------------------------------------------------

_TREE_LINE = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+)\b(?P<rest>.*)$")


def drawn_tree() -> list[tuple[int, str, str]]:
    """(depth, class name, comment) for each line of the docstring's tree."""
    doc = exceptions.__doc__ or ""
    block = doc.split("::", 1)[1].strip("\n").split("\n\n", 1)[0]
    rows = []
    for line in block.splitlines():
        match = _TREE_LINE.match(line.strip("\n")[4:])
        assert match, f"cannot read tree line {line!r}"
        rows.append((len(match["indent"]) // 4, match["name"], match["rest"]))
    return rows


def test_the_drawn_tree_matches_the_classes() -> None:
    rows = drawn_tree()
    assert rows[0][:2] == (0, "ActorlibError")
    parents: list[type] = []
    for depth, name, comment in rows:
        cls = getattr(exceptions, name)
        del parents[depth:]
        if parents:
            assert cls.__bases__[0] is parents[-1], f"{name} is drawn under {parents[-1].__name__}"
        parents.append(cls)
        for also in re.findall(r"also an? (\w+)", comment):
            assert issubclass(cls, getattr(builtins, also)), f"{name} is not a {also}"
        for ray_name in re.findall(r"\(Ray: (\w+)\)", comment):
            assert getattr(exceptions, ray_name) is cls


def test_every_class_is_drawn() -> None:
    drawn = {name for _, name, _ in drawn_tree()}
    defined = {
        name for name, obj in vars(exceptions).items()
        if isinstance(obj, type) and issubclass(obj, ActorlibError) and obj.__name__ == name
    }
    assert defined <= drawn


def test_the_docstring_mentions_every_public_name() -> None:
    doc = exceptions.__doc__ or ""
    assert [name for name in exceptions.__all__ if name not in doc] == []

"""OTP-style supervision trees on Trio, for tasks and OS processes.

Knows nothing of actorlib. A :class:`Supervisor` starts :class:`ChildSpec`
children in order, restarts them by strategy and restart type with
exponential backoff, escalates to its parent when restarts come faster than
its :class:`Intensity` allows, and never lets a child process outlive it.
"""

from typing import TYPE_CHECKING, Any

from ._spawn import Spawned, spawn

if TYPE_CHECKING:
    from ._backoff import Backoff
    from ._child import Child, StartError, TaskChild
    from ._exit import Exit, ExitKind, Shutdown
    from ._forked_child import ForkedChild
    from ._intensity import Intensity
    from ._link import ParentLink, connect_parent, run_child
    from ._policy import Plan, Restart, Strategy, needs_restart, plan_exit
    from ._process_child import ProcessChild
    from ._snapshot import ChildInfo, IntensityUse
    from ._spec import ChildSpec
    from ._supervisor import Escalated, Event, Supervisor, SupervisorChild, supervisor_spec
    from ._tree import open_supervisor
    from ._zygote import Zygote, ZygoteError

# Imported on first use: a program can spawn its first child (``spawn``, standard library
# only) before it pays for importing Trio and the rest.
_HOMES = {
    "Backoff": "._backoff", "Child": "._child", "StartError": "._child", "TaskChild": "._child",
    "Exit": "._exit", "ExitKind": "._exit", "Shutdown": "._exit", "ForkedChild": "._forked_child",
    "Intensity": "._intensity", "ParentLink": "._link", "connect_parent": "._link", "run_child": "._link",
    "Plan": "._policy", "Restart": "._policy", "Strategy": "._policy", "needs_restart": "._policy",
    "plan_exit": "._policy", "ProcessChild": "._process_child", "ChildInfo": "._snapshot",
    "IntensityUse": "._snapshot", "ChildSpec": "._spec", "Escalated": "._supervisor", "Event": "._supervisor",
    "Supervisor": "._supervisor", "SupervisorChild": "._supervisor", "supervisor_spec": "._supervisor",
    "open_supervisor": "._tree", "Zygote": "._zygote", "ZygoteError": "._zygote",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    import importlib

    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'supervisors' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


__all__ = [
    "Backoff",
    "Child",
    "ChildInfo",
    "ChildSpec",
    "Escalated",
    "Event",
    "Exit",
    "ForkedChild",
    "ExitKind",
    "Intensity",
    "IntensityUse",
    "ParentLink",
    "Plan",
    "ProcessChild",
    "Restart",
    "Shutdown",
    "Spawned",
    "StartError",
    "Strategy",
    "Supervisor",
    "SupervisorChild",
    "TaskChild",
    "Zygote",
    "ZygoteError",
    "connect_parent",
    "needs_restart",
    "open_supervisor",
    "plan_exit",
    "run_child",
    "spawn",
    "supervisor_spec",
]

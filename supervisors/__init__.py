"""OTP-style supervision trees on Trio, for tasks and OS processes.

Knows nothing of actorlib. A :class:`Supervisor` starts :class:`ChildSpec`
children in order, restarts them by strategy and restart type with
exponential backoff, escalates to its parent when restarts come faster than
its :class:`Intensity` allows, and never lets a child process outlive it.
"""

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
    "supervisor_spec",
]

"""Options of remote functions: validation, merging and derived values (pure).

Names and defaults follow Ray's: ``num_cpus=1``, ``num_gpus=0``,
``num_returns=1``, ``max_retries=3``, ``retry_exceptions=False``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import Any

from ._runtime_env import check_runtime_env
from ._wire import MAX_NUM_RETURNS

TASK_DEFAULTS: dict[str, Any] = {
    "num_cpus": 1,
    "num_gpus": 0,
    "memory": 0,
    "resources": {},
    "num_returns": 1,
    "max_retries": 3,
    "retry_exceptions": False,
    "runtime_env": None,
    "name": None,
    "scheduling_strategy": None,
}
# Ray's older spellings, accepted by tasks and actors alike and turned into what replaced them:
# the three placement_group options into a PlacementGroupSchedulingStrategy, and
# accelerator_type="X" into a tiny amount of the custom resource "accelerator_type:X"
# (a node offers it with `actorlib start --resources '{"accelerator_type:X": 1}'`).
LEGACY_OPTIONS = ("placement_group", "placement_group_bundle_index", "placement_group_capture_child_tasks", "accelerator_type")
ACCELERATOR_PREFIX = "accelerator_type:"
ACCELERATOR_AMOUNT = 0.001  # what Ray asks of it
_RESERVED = {"CPU": "num_cpus", "GPU": "num_gpus", "memory": "memory"}


def validate_task_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Check options given to ``@remote(...)`` or ``.options(...)``; raise ValueError/TypeError naming the bad one."""
    checked = _common(_modern(options), TASK_DEFAULTS, "a remote function", unset_ok=False)
    if "num_returns" in checked:
        check_num_returns(checked["num_returns"])
    if "max_retries" in checked:
        value = checked["max_retries"]
        if not isinstance(value, int) or isinstance(value, bool) or value < -1:
            raise ValueError(f"max_retries must be an integer >= -1 (-1: retry for ever), got {value!r}")
    if "retry_exceptions" in checked:
        checked["retry_exceptions"] = _retry_exceptions(checked["retry_exceptions"])
    if "runtime_env" in checked:
        check_runtime_env(checked["runtime_env"], where="remote function")
    strategy_of(checked)
    return checked


def check_num_returns(value: Any) -> None:
    """An integer from 0 to MAX_NUM_RETURNS, "streaming" or "dynamic"; else ValueError naming it."""
    if value not in GENERATOR_RETURNS and (
        not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_NUM_RETURNS
    ):
        raise ValueError(
            f"num_returns must be an integer from 0 to {MAX_NUM_RETURNS:,}, 'streaming' or 'dynamic', got {value!r}"
        )
    if value == "dynamic":
        warnings.warn(
            "num_returns='dynamic' is deprecated (as in Ray); use num_returns='streaming'", DeprecationWarning, stacklevel=3
        )


GENERATOR_RETURNS = ("streaming", "dynamic")  # a generator's results as they come / as one ref once it ends


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Options of ``.options(...)`` on top of the decorator's."""
    merged = {**base, **override}
    if "runtime_env" in base and "runtime_env" in override and base["runtime_env"] and override["runtime_env"]:
        merged["runtime_env"] = merge_runtime_env(base["runtime_env"], override["runtime_env"])
    return merged


def merge_runtime_env(parent: Mapping[str, Any] | None, child: Mapping[str, Any] | None) -> dict[str, Any]:
    """Ray's merge: the child's fields win, except ``env_vars``, which merge key by key."""
    parent, child = dict(parent or {}), dict(child or {})
    merged = {**parent, **child}
    if "env_vars" in parent or "env_vars" in child:
        merged["env_vars"] = {**(parent.get("env_vars") or {}), **(child.get("env_vars") or {})}
    return merged


def shape_of(options: Mapping[str, Any]) -> dict[str, float]:
    """The resource request of a task with these (validated, merged) options."""
    shape = {
        "CPU": float(options.get("num_cpus", 1)),
        "GPU": float(options.get("num_gpus", 0)),
        "memory": float(options.get("memory", 0)),
    }
    shape.update({name: float(qty) for name, qty in options.get("resources", {}).items()})
    return {name: qty for name, qty in shape.items() if qty}


def validate_resources(resources: Any, *, where: str) -> dict[str, float]:
    if not isinstance(resources, Mapping):
        raise TypeError(f"{where}: resources must be a dict of name to quantity, got {resources!r}")
    checked = {}
    for name, qty in resources.items():
        if not isinstance(name, str) or not name:
            raise TypeError(f"{where}: resource names must be non-empty strings, got {name!r}")
        if name in _RESERVED:
            raise ValueError(f"{where}: use {_RESERVED[name]}= instead of resources={{{name!r}: ...}}")
        checked[name] = _non_negative(f"{where}: resources[{name!r}]", qty)
    return checked


def env_vars_of(runtime_env: Any, *, where: str) -> dict[str, str]:
    """The ``env_vars`` of a runtime_env, after checking all of it (see ``_runtime_env``)."""
    return dict(check_runtime_env(runtime_env, where=where).get("env_vars") or {})


def _modern(options: Mapping[str, Any]) -> Mapping[str, Any]:
    """``options`` with Ray's older spellings (LEGACY_OPTIONS) turned into the current ones."""
    if not any(name in options for name in LEGACY_OPTIONS):
        return options
    modern = {name: value for name, value in options.items() if name not in LEGACY_OPTIONS}
    group = options.get("placement_group", "default")
    if group not in (None, "default"):
        if options.get("scheduling_strategy") is not None:
            raise ValueError("placement_group cannot be given with scheduling_strategy: give a PlacementGroupSchedulingStrategy alone")
        from .util.scheduling_strategies import PlacementGroupSchedulingStrategy

        modern["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
            group, options.get("placement_group_bundle_index", -1), options.get("placement_group_capture_child_tasks")
        )
    elif options.get("placement_group_bundle_index", -1) != -1:
        raise ValueError("placement_group_bundle_index needs placement_group (or use a PlacementGroupSchedulingStrategy)")
    accelerator = options.get("accelerator_type")
    if accelerator is not None:
        if not isinstance(accelerator, str) or not accelerator:
            raise TypeError(f"accelerator_type must be a non-empty string, got {accelerator!r}")
        resources = dict(options.get("resources") or {})
        resources[ACCELERATOR_PREFIX + accelerator] = ACCELERATOR_AMOUNT
        modern["resources"] = resources
    return modern


def _common(options: Mapping[str, Any], defaults: Mapping[str, Any], what: str, *, unset_ok: bool) -> dict[str, Any]:
    """The checks tasks and actors share: known names, resource quantities (None allowed if ``unset_ok``)."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"invalid option {unknown[0]!r} for {what}; valid options: {', '.join(sorted(defaults))}")
    checked = dict(options)
    for name in ("num_cpus", "num_gpus", "memory"):
        if name in checked and not (unset_ok and checked[name] is None):
            checked[name] = _non_negative(name, checked[name])
    if "resources" in checked:
        checked["resources"] = validate_resources(checked["resources"], where=what.split(" ", 1)[1])
    return checked


def _non_negative(name: str, value: Any) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < math.inf:
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")
    return value


def _retry_exceptions(value: Any) -> bool | tuple[type[BaseException], ...]:
    if isinstance(value, bool):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(t, type) and issubclass(t, BaseException) for t in value):
        return tuple(value)
    raise TypeError(f"retry_exceptions must be a bool or a list of exception classes, got {value!r}")


ACTOR_DEFAULTS: dict[str, Any] = {
    "num_cpus": None,
    "num_gpus": None,  # None and 0 differ, as in Ray: see actor_shapes
    "memory": 0,
    "resources": {},
    "max_restarts": 0,
    "max_task_retries": 0,
    "max_concurrency": None,
    "concurrency_groups": None,
    "name": None,
    "namespace": None,
    "lifetime": None,
    "get_if_exists": False,
    "runtime_env": None,
    "supervisor": None,
    "scheduling_strategy": None,
}


def validate_actor_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """Check options of ``@remote`` on a class or ``Cls.options(...)``; raise naming the bad one."""
    checked = _common(_modern(options), ACTOR_DEFAULTS, "an actor", unset_ok=True)
    for name, low in (("max_restarts", -1), ("max_task_retries", -1), ("max_concurrency", 1)):
        value = checked.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    groups = checked.get("concurrency_groups")
    if groups is not None and (
        not isinstance(groups, Mapping) or not all(isinstance(k, str) and isinstance(v, int) and v >= 1 for k, v in groups.items())
    ):
        raise ValueError(f"concurrency_groups must map group names to limits >= 1, got {groups!r}")
    if checked.get("lifetime") not in (None, "detached", "non_detached"):
        raise ValueError(f"lifetime must be None or 'detached', got {checked['lifetime']!r}")
    for name in ("name", "namespace"):
        if checked.get(name) is not None and not isinstance(checked[name], str):
            raise TypeError(f"{name} must be a string, got {checked[name]!r}")
    if "runtime_env" in checked:
        check_runtime_env(checked["runtime_env"], where="actor")
    strategy_of(checked)
    return checked


def actor_shapes(options: Mapping[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """(resources to place the actor, resources it holds while alive), as Ray counts them.

    An actor that names no resource but ``memory`` needs 1 CPU to be placed and holds
    none (its methods "use" that CPU only for placement). One that names any other
    resource — ``num_cpus``, ``num_gpus`` (even 0, as in Ray), a custom one — holds
    ``num_cpus`` (default 1) with the rest, and needs just that to be placed.
    """
    named = {**options.get("resources", {})}
    for option, resource in (("num_cpus", "CPU"), ("num_gpus", "GPU")):
        if options.get(option) is not None:
            named[resource] = options[option]
    counted = {**options, "num_gpus": options.get("num_gpus") or 0}
    if not named:
        held = shape_of({**counted, "num_cpus": 0})
        return {**held, "CPU": 1.0}, held
    explicit = options.get("num_cpus")
    held = shape_of({**counted, "num_cpus": 1 if explicit is None else explicit})
    return dict(held), held


def strategy_of(options: Mapping[str, Any]) -> tuple[str, bytes, bool]:
    """``scheduling_strategy`` as (name, node affinity, soft); raises ValueError naming a bad one.

    A placement group strategy is DEFAULT here: see :func:`group_of`.
    """
    strategy = options.get("scheduling_strategy")
    if strategy is None or strategy == "DEFAULT" or group_of(options) is not None:
        return ("DEFAULT", b"", False)
    if hasattr(strategy, "placement_group"):  # PlacementGroupSchedulingStrategy(placement_group=None)
        return ("DEFAULT", b"", False)
    if strategy == "SPREAD":
        return ("SPREAD", b"", False)
    node_id = getattr(strategy, "node_id", None)
    if isinstance(node_id, str):
        return ("DEFAULT", bytes.fromhex(node_id), bool(getattr(strategy, "soft", False)))
    raise ValueError(
        "scheduling_strategy must be 'DEFAULT', 'SPREAD', a NodeAffinitySchedulingStrategy "
        f"or a PlacementGroupSchedulingStrategy, got {strategy!r}"
    )


def group_of(options: Mapping[str, Any]) -> tuple[bytes, int] | None:
    """(placement group id, bundle index) of a PlacementGroupSchedulingStrategy; None without one.

    Raises ValueError for a bundle index outside the group.
    """
    group = getattr(options.get("scheduling_strategy"), "placement_group", None)
    if group is None:
        return None
    pg_id = getattr(group, "id", None)
    if not isinstance(pg_id, bytes):
        raise TypeError(f"placement_group must be a PlacementGroup, got {group!r}")
    index = options["scheduling_strategy"].placement_group_bundle_index
    count = getattr(group, "bundle_count", None)
    if not isinstance(index, int) or isinstance(index, bool) or index < -1 or (count is not None and index >= count):
        within = f"0..{count - 1}" if count is not None else "0 or more"
        raise ValueError(f"placement_group_bundle_index must be -1 (any bundle) or in {within}, got {index!r}")
    return bytes(pg_id), index


def placement_of(options: Mapping[str, Any], caller: tuple[bytes, bool]) -> tuple[tuple[bytes, int] | None, bool]:
    """(placement group and bundle index, captures its children) of a new task or actor.

    ``caller`` is (group, captures) of the task or actor creating it. As in Ray, one
    without a ``scheduling_strategy`` goes into the caller's group (any bundle) when the
    caller captures child tasks, and captures in turn; a PlacementGroupSchedulingStrategy
    whose ``placement_group_capture_child_tasks`` is None inherits the caller's flag.
    """
    group = group_of(options)
    caller_group, captures = caller
    if group is not None:
        flag = options["scheduling_strategy"].placement_group_capture_child_tasks
        return group, captures if flag is None else bool(flag)
    if options.get("scheduling_strategy") is None and caller_group and captures:
        return (caller_group, -1), True
    return None, False

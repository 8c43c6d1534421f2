"""Remote-function options: validation naming the bad option, Ray's merge rules, resource shapes."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorlib._options import (
    TASK_DEFAULTS,
    merge,
    merge_runtime_env,
    placement_of,
    shape_of,
    validate_task_options,
)
from actorlib.util.placement_group import PlacementGroup
from actorlib.util.scheduling_strategies import PlacementGroupSchedulingStrategy

# (options, exception, text the message must contain)
BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"num_cpu": 1}, ValueError, "num_cpu"),
    ({"num_cpus": -1}, ValueError, "num_cpus"),
    ({"num_cpus": "2"}, ValueError, "num_cpus"),
    ({"num_cpus": True}, ValueError, "num_cpus"),
    ({"num_cpus": None}, ValueError, "num_cpus"),
    ({"num_gpus": -0.5}, ValueError, "num_gpus"),
    ({"num_gpus": [1]}, ValueError, "num_gpus"),
    ({"memory": -1}, ValueError, "memory"),
    ({"resources": [("TPU", 1)]}, TypeError, "resources"),
    ({"resources": None}, TypeError, "resources"),
    ({"resources": {"": 1}}, TypeError, "resource names"),
    ({"resources": {3: 1}}, TypeError, "resource names"),
    ({"resources": {"TPU": -1}}, ValueError, "resources['TPU']"),
    ({"resources": {"TPU": "many"}}, ValueError, "resources['TPU']"),
    ({"num_returns": -1}, ValueError, "num_returns"),
    ({"num_returns": 1.5}, ValueError, "num_returns"),
    ({"num_returns": True}, ValueError, "num_returns"),
    ({"num_returns": 100_001}, ValueError, "num_returns must be an integer from 0 to 100,000"),
    ({"max_retries": -2}, ValueError, "max_retries"),
    ({"max_retries": 2.0}, ValueError, "max_retries"),
    ({"max_retries": False}, ValueError, "max_retries"),
    ({"retry_exceptions": "ValueError"}, TypeError, "retry_exceptions"),
    ({"retry_exceptions": [ValueError, "KeyError"]}, TypeError, "retry_exceptions"),
    ({"retry_exceptions": [int]}, TypeError, "retry_exceptions"),
    ({"runtime_env": "env_vars=A"}, TypeError, "runtime_env"),
    ({"runtime_env": {"pip": ["numpy"]}}, ValueError, "'pip'"),
    ({"runtime_env": {"env_vars": {"A": 1}}}, TypeError, "env_vars"),
    ({"runtime_env": {"env_vars": ["A=1"]}}, TypeError, "env_vars"),
]


@pytest.mark.parametrize(("options", "error", "text"), BAD_OPTIONS, ids=[repr(o) for o, _, _ in BAD_OPTIONS])
def test_bad_options_raise_naming_the_option(options: dict[str, Any], error: type[Exception], text: str) -> None:
    with pytest.raises(error) as info:
        validate_task_options(options)
    assert text in str(info.value)


def test_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError) as info:
        validate_task_options({"num_cpus": 1, "num_cpu": 1})
    message = str(info.value)
    assert "'num_cpu'" in message
    assert all(name in message for name in TASK_DEFAULTS)


@pytest.mark.parametrize(("name", "method"), [("CPU", "num_cpus"), ("GPU", "num_gpus"), ("memory", "memory")])
def test_reserved_resources_are_rejected_with_a_hint(name: str, method: str) -> None:
    with pytest.raises(ValueError, match=f"use {method}="):
        validate_task_options({"resources": {name: 1}})


@pytest.mark.parametrize("value", [math.nan, math.inf])
@pytest.mark.parametrize("name", ["num_cpus", "num_gpus", "memory"])
def test_non_finite_quantities_are_rejected(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=name):
        validate_task_options({name: value})


def test_good_options_pass_and_come_back_normalised() -> None:
    options = {
        "num_cpus": 0.5,
        "num_gpus": 1,
        "memory": 2**30,
        "resources": {"TPU": 2},
        "num_returns": 0,
        "max_retries": -1,
        "retry_exceptions": [ValueError, KeyError],
        "runtime_env": {"env_vars": {"A": "1"}},
        "name": "job",
    }
    checked = validate_task_options(options)
    assert checked == {**options, "retry_exceptions": (ValueError, KeyError)}
    assert options["retry_exceptions"] == [ValueError, KeyError]  # the caller's dict is untouched


@pytest.mark.parametrize("value", [True, False, (OSError,), []])
def test_retry_exceptions_accepts_bools_and_exception_classes(value: Any) -> None:
    assert validate_task_options({"retry_exceptions": value})["retry_exceptions"] == (
        value if isinstance(value, bool) else tuple(value)
    )


def test_the_defaults_validate() -> None:
    assert validate_task_options(TASK_DEFAULTS) == TASK_DEFAULTS


# ---- merging ---------------------------------------------------------------------------


def test_merge_lets_options_override_the_decorator() -> None:
    base = {**TASK_DEFAULTS, "num_cpus": 2, "name": "f"}
    merged = merge(base, {"num_cpus": 0.5, "max_retries": 0})
    assert merged == {**base, "num_cpus": 0.5, "max_retries": 0}
    assert base["num_cpus"] == 2


def test_merge_merges_runtime_env_vars_key_by_key() -> None:
    base = {"runtime_env": {"env_vars": {"A": "base", "B": "base"}}}
    merged = merge(base, {"runtime_env": {"env_vars": {"B": "child", "C": "child"}}})
    assert merged["runtime_env"] == {"env_vars": {"A": "base", "B": "child", "C": "child"}}
    assert base["runtime_env"]["env_vars"] == {"A": "base", "B": "base"}


def test_merge_keeps_the_base_runtime_env_when_options_do_not_mention_it() -> None:
    assert merge({"runtime_env": {"env_vars": {"A": "1"}}}, {"num_cpus": 1})["runtime_env"] == {"env_vars": {"A": "1"}}


env = st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=4)
runtime_envs = st.fixed_dictionaries(
    {}, optional={"env_vars": env, "working_dir": st.text(max_size=5), "py_modules": st.lists(st.text(max_size=3))}
)


@given(runtime_envs, runtime_envs)
@settings(max_examples=100, deadline=None)
def test_merge_runtime_env_child_fields_win_env_vars_merge(parent: dict[str, Any], child: dict[str, Any]) -> None:
    merged = merge_runtime_env(parent, child)
    for field in (set(parent) | set(child)) - {"env_vars"}:
        assert merged[field] == child.get(field, parent.get(field))
    if "env_vars" in parent or "env_vars" in child:
        assert merged["env_vars"] == {**parent.get("env_vars", {}), **child.get("env_vars", {})}
    else:
        assert "env_vars" not in merged
    assert set(merged) == set(parent) | set(child)


def test_merge_runtime_env_of_nothing_is_empty() -> None:
    assert merge_runtime_env(None, None) == {}
    assert merge_runtime_env(None, {"env_vars": {"A": "1"}}) == {"env_vars": {"A": "1"}}


def test_a_validated_runtime_env_with_null_env_vars_merges() -> None:
    child = {"env_vars": None}
    validate_task_options({"runtime_env": child})
    assert merge_runtime_env({"env_vars": {"A": "job"}}, child)["env_vars"] == {"A": "job"}


# ---- resource shapes -----------------------------------------------------------------


def test_shape_defaults_to_one_cpu() -> None:
    assert shape_of({}) == {"CPU": 1.0}
    assert shape_of(TASK_DEFAULTS) == {"CPU": 1.0}


def test_shape_drops_zero_quantities() -> None:
    assert shape_of({"num_cpus": 0}) == {}
    assert shape_of({"num_cpus": 0, "num_gpus": 0, "memory": 0, "resources": {"TPU": 0}}) == {}


def test_shape_collects_every_resource_as_floats() -> None:
    shape = shape_of({"num_cpus": 2, "num_gpus": 0.5, "memory": 1024, "resources": {"TPU": 4}})
    assert shape == {"CPU": 2.0, "GPU": 0.5, "memory": 1024.0, "TPU": 4.0}
    assert all(type(qty) is float for qty in shape.values())


PG = PlacementGroup(b"g" * 16, [{"CPU": 2}, {"CPU": 1}])
CALLER_PG = b"c" * 16


def in_group(capture: bool | None = None, index: int = -1, group: Any = PG) -> dict[str, Any]:
    strategy = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=index, placement_group_capture_child_tasks=capture)
    return {"scheduling_strategy": strategy}


@pytest.mark.parametrize(
    "options, caller, expected",
    [
        # no strategy: into the caller's group only when the caller captures, and then capture too
        ({}, (b"", False), (None, False)),
        ({}, (CALLER_PG, False), (None, False)),
        ({}, (CALLER_PG, True), ((CALLER_PG, -1), True)),
        ({"scheduling_strategy": None}, (CALLER_PG, True), ((CALLER_PG, -1), True)),
        # any explicit strategy wins over capture
        ({"scheduling_strategy": "DEFAULT"}, (CALLER_PG, True), (None, False)),
        ({"scheduling_strategy": "SPREAD"}, (CALLER_PG, True), (None, False)),
        (in_group(group=None), (CALLER_PG, True), (None, False)),  # Ray's way to opt out
        # an explicit group: its own flag, or the caller's when None
        (in_group(True, 1), (b"", False), ((PG.id, 1), True)),
        (in_group(False), (CALLER_PG, True), ((PG.id, -1), False)),
        (in_group(None), (CALLER_PG, True), ((PG.id, -1), True)),
        (in_group(None), (b"", False), ((PG.id, -1), False)),
    ],
)
def test_placement_of_follows_rays_capture_rules(options: dict[str, Any], caller: tuple[bytes, bool], expected: Any) -> None:
    assert placement_of(options, caller) == expected


@pytest.mark.parametrize("num_returns", [-1, 100_001, 2**63])
def test_actor_methods_check_num_returns_as_tasks_do(num_returns: int) -> None:
    import actorlib
    from actorlib._actor_class import ActorMethod
    from actorlib._wire import MethodInfo

    with pytest.raises(ValueError, match="num_returns must be an integer from 0 to 100,000"):
        actorlib.method(num_returns=num_returns)
    with pytest.raises(ValueError, match="num_returns must be an integer from 0 to 100,000"):
        ActorMethod(None, "m", MethodInfo()).options(num_returns=num_returns)

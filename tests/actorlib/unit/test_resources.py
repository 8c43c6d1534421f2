"""Resource arithmetic: exact to the quantum, reversible, and honest about what is missing."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actorlib._node import _resources as r

Q = 10_000  # one quantum is 1/Q of a unit
names = st.sampled_from(["CPU", "GPU", "memory", "TPU", "custom"])
quantities = st.integers(0, 64 * Q).map(lambda k: k / Q)  # values the ledger can hold exactly
ledgers = st.dictionaries(names, quantities, max_size=5)


@st.composite
def ledger_and_shape(draw: st.DrawFn) -> tuple[dict[str, float], dict[str, float]]:
    ledger = draw(ledgers)
    chosen = draw(st.sets(st.sampled_from(sorted(ledger)))) if ledger else set()
    return ledger, {name: draw(quantities) for name in chosen}


@given(ledger_and_shape())
@settings(max_examples=100, deadline=None)
def test_subtract_then_add_restores_the_ledger(case: tuple[dict[str, float], dict[str, float]]) -> None:
    ledger, shape = case
    available = dict(ledger)
    r.subtract(available, shape)
    r.add(available, shape)
    assert available == ledger


@given(ledgers, ledgers)
@settings(max_examples=100, deadline=None)
def test_add_then_subtract_restores_the_ledger_even_for_new_names(
    ledger: dict[str, float], shape: dict[str, float]
) -> None:
    available = dict(ledger)
    r.add(available, shape)
    r.subtract(available, shape)
    assert available == {**{name: 0.0 for name in shape}, **ledger}


@given(ledgers, ledgers)
@settings(max_examples=150, deadline=None)
def test_fits_agrees_with_componentwise_comparison(shape: dict[str, float], available: dict[str, float]) -> None:
    assert r.fits(shape, available) == all(available.get(name, 0.0) >= qty for name, qty in shape.items())


@given(ledger_and_shape())
@settings(max_examples=100, deadline=None)
def test_what_fits_can_be_subtracted_without_going_negative(
    case: tuple[dict[str, float], dict[str, float]],
) -> None:
    ledger, shape = case
    available = dict(ledger)
    if r.fits(shape, available):
        r.subtract(available, shape)
        assert all(qty >= 0 for qty in available.values())


def test_a_tenth_added_ten_times_is_exactly_one() -> None:
    available: dict[str, float] = {}
    for _ in range(10):
        r.add(available, {"CPU": 0.1})
    assert available == {"CPU": 1.0}
    for _ in range(10):
        r.subtract(available, {"CPU": 0.1})
    assert available == {"CPU": 0.0}


@given(st.integers(1, Q), st.integers(1, 200))
@settings(max_examples=150, deadline=None)
def test_repeated_fractions_accumulate_without_drift(k: int, n: int) -> None:
    available = {"GPU": 0.0}
    for _ in range(n):
        r.add(available, {"GPU": k / Q})
    assert available["GPU"] == (k * n) / Q
    assert r.fits({"GPU": (k * n) / Q}, available)
    for _ in range(n):
        r.subtract(available, {"GPU": k / Q})
    assert available["GPU"] == 0.0


def test_fits_tolerates_float_noise_below_the_quantum() -> None:
    assert 0.1 + 0.2 != 0.3
    assert r.fits({"CPU": 0.3}, {"CPU": 0.1 + 0.2})
    assert r.fits({"CPU": 0.1 + 0.2}, {"CPU": 0.3})


def test_normalize_drops_zeros_and_rounds_to_the_quantum() -> None:
    assert r.normalize({"CPU": 1, "GPU": 0, "x": 0.00001, "y": 0.33333333}) == {"CPU": 1.0, "y": 0.3333}


def test_infeasible_reason_is_none_when_the_shape_fits_the_total() -> None:
    total = {"CPU": 4.0, "GPU": 1.0, "memory": 2.0**30}
    assert r.infeasible_reason({"CPU": 4, "GPU": 0.5}, total) is None
    assert r.infeasible_reason({}, total) is None


def test_infeasible_reason_names_each_missing_resource_and_what_the_node_has() -> None:
    reason = r.infeasible_reason({"CPU": 8, "GPU": 1, "TPU": 2, "memory": 1}, {"CPU": 4.0, "memory": 2.0})
    assert reason is not None
    assert "CPU=8 (this node has 4)" in reason
    assert "GPU=1 (this node has 0)" in reason
    assert "TPU=2 (this node has 0)" in reason
    assert "memory" not in reason  # that one fits


@given(ledgers, ledgers)
@settings(max_examples=100, deadline=None)
def test_infeasible_reason_agrees_with_fits(shape: dict[str, float], total: dict[str, float]) -> None:
    reason = r.infeasible_reason(shape, total)
    assert (reason is None) == r.fits(shape, total)
    if reason is not None:
        for name, qty in shape.items():
            assert (f"{name}=" in reason) == (total.get(name, 0.0) < qty)


def test_only_keeps_the_named_resources() -> None:
    assert r.only({"CPU": 1, "GPU": 2, "x": 3}, ("CPU", "x")) == {"CPU": 1, "x": 3}


@pytest.mark.parametrize(
    ("resources", "text"),
    [
        ({"CPU": 2, "GPU": 0}, "CPU=2, GPU=0"),
        ({"memory": 1.5 * 2**30}, "memory=1.5 GiB"),
        ({"object_store_memory": 2**30, "CPU": 0.5}, "CPU=0.5, object_store_memory=1.0 GiB"),
    ],
)
def test_describe(resources: dict[str, float], text: str) -> None:
    assert r.describe(resources) == text

"""History: a bounded record of things that ended, oldest forgotten first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actorlib._history import History


@given(st.integers(0, 20), st.lists(st.integers(0, 30), max_size=200))
def test_keeps_the_newest_limit_records_in_order(limit: int, keys: list[int]) -> None:
    history: History[int, str] = History(limit)
    newest: dict[int, str] = {}
    for n, key in enumerate(keys):
        history.add(key, f"{key}@{n}")
        newest.pop(key, None)
        newest[key] = f"{key}@{n}"
    expected = list(newest.items())[-limit:] if limit else []
    assert len(history) == len(expected) <= limit
    assert history.values() == [record for _, record in expected]
    assert all(history.get(key) == record and key in history for key, record in expected)


def test_a_negative_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 0"):
        History(-1)

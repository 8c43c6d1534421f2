"""Fixtures shared by the actorlib suites."""

from __future__ import annotations

from pathlib import Path

import pytest

from .reliability import Ledger


@pytest.fixture(scope="session")
def ledger(request):
    """Rows of the reliability table; written to ``--reliability-report PATH`` at the end, if given."""
    rows = Ledger()
    yield rows
    path = request.config.getoption("--reliability-report")
    if path and rows.rows:
        Path(path).write_text(rows.markdown())

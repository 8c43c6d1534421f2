"""Settings for every test: clusters started by tests serve their HTTP API on a free port."""

from __future__ import annotations

import os

# Never the fixed default (8265): tests run beside each other and beside real clusters.
os.environ.setdefault("ACTORLIB_DASHBOARD_PORT", "0")


def pytest_addoption(parser):
    parser.addoption(
        "--reliability-report",
        metavar="PATH",
        help="write what the chaos and load suites injected and what survived, as a Markdown table (docs/reliability.md)",
    )

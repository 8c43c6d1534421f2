"""Settings for every test: clusters started by tests serve their HTTP API on a free port."""

from __future__ import annotations

import os

# Never the fixed default (8265): tests run beside each other and beside real clusters.
os.environ.setdefault("ACTORLIB_DASHBOARD_PORT", "0")


def pytest_terminal_summary(terminalreporter) -> None:
    """The fuzz suites' counts and the orphan matrix's times (docs/reliability.md quotes them)."""
    from tests.fuzzcount import FIGURES, TRIED, summary

    if TRIED:
        terminalreporter.section("fuzz inputs tried")
        total = sum(sum(kinds.values()) for kinds in TRIED.values())
        for line in summary():
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"total: {total}")
    if FIGURES:
        terminalreporter.section("figures measured")
        for name, value in FIGURES.items():
            terminalreporter.write_line(f"{name}: {value}")


def pytest_addoption(parser):
    parser.addoption(
        "--reliability-report",
        metavar="PATH",
        help="write what the chaos and load suites injected and what survived, as a Markdown table (docs/reliability.md)",
    )

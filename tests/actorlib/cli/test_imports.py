"""The CLI reaches the runtime only through public modules (it is a face, like the dashboard)."""

from __future__ import annotations

import ast
from pathlib import Path

import actorlib

CLI = Path(actorlib.__file__).parent / "_cli"
PUBLIC = {
    "actorlib", "actorlib.cluster", "actorlib.util", "actorlib.util.state", "actorlib.exceptions", "actorlib.job_submission",
    "actorlib.testing", "actorlib.testing.chaos",
}  # fmt: skip


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the actorlib modules a CLI module imports (relative imports resolved)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                package = ["actorlib", "_cli"][: 2 - (node.level - 1)]
                base = ".".join(package + ([node.module] if node.module else []))
            names.add(base)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name == "actorlib" or name.startswith("actorlib.")}


def test_cli_imports_only_public_modules_and_itself() -> None:
    offenders = {}
    for path in sorted(CLI.glob("*.py")):
        bad = {m for m in imported_modules(path) if m not in PUBLIC and not m.startswith("actorlib._cli")}
        if bad:
            offenders[path.name] = sorted(bad)
    assert not offenders, f"the CLI imports private runtime modules: {offenders}"


def test_the_check_sees_a_private_import(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text("from .._head import head_address\nfrom ..util import state\nfrom ._query import call\n")
    assert imported_modules(sample) == {"actorlib._head", "actorlib.util", "actorlib._cli._query"}

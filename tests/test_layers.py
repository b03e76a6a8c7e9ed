"""The command line sits on the campaign service: no module of mailer/cli
imports the journal or the sender, not even lazily or for type checking."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[1] / "mailer" / "cli"
FORBIDDEN = {"mailer.journal", "mailer.smtp.sender"}


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement anywhere in the file names, relative ones
    resolved, `from X import Y` counted as X and X.Y (Y may be a module)."""
    package = "mailer.cli"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def test_no_cli_module_imports_the_journal_or_the_sender() -> None:
    modules = sorted(CLI.glob("*.py"))
    assert len(modules) > 5  # the walk sees the package at all
    offenders = {path.name: sorted(imported_modules(path) & FORBIDDEN) for path in modules}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_walk_resolves_relative_and_lazy_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from ..journal import Journal\n"
                      "from ..smtp import sender\nimport mailer.journal\n", encoding="utf-8")
    assert {"mailer.journal", "mailer.smtp.sender"} <= imported_modules(sample)

"""The command line sits on the campaign service: no module of mailer/cli
imports the journal or the sender, not even lazily or for type checking."""

from __future__ import annotations

from pathlib import Path

from tests.importwalk import PACKAGE, imported_modules, imports_of

CLI = PACKAGE / "cli"
FORBIDDEN = {"mailer.journal", "mailer.smtp.sender"}


def test_no_cli_module_imports_the_journal_or_the_sender() -> None:
    modules = sorted(CLI.glob("*.py"))
    assert len(modules) > 5  # the walk sees the package at all
    offenders = {path.name: sorted(imports_of(path) & FORBIDDEN) for path in modules}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_the_walk_resolves_relative_and_lazy_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from ..journal import Journal\n"
                      "from ..smtp import sender\nimport mailer.journal\n", encoding="utf-8")
    assert {"mailer.journal", "mailer.smtp.sender"} <= imported_modules(sample, "mailer.cli")

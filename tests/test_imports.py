"""The package's import graph: no cycle anywhere in mailer/, and the settings module
imports nothing that logs in (no OAuth2, no keyring, no credentials), read from the
source with ast, lazy imports inside functions included."""

from __future__ import annotations

from pathlib import Path

from tests.importwalk import PACKAGE, imports_of, module_name


def imported(path: Path, modules: set[str]) -> set[str]:
    """The mailer modules `path` imports (`from . import x` names module x when it is one)."""
    name = module_name(path)
    return {m for m in imports_of(path) if m in modules and m != name}


def graph() -> dict[str, set[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imported(p, modules) for p in paths}


def cycle_in(edges: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path of module names, [] when there is none."""
    done: set[str] = set()
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        if node in stack:
            return [*stack[stack.index(node):], node]
        if node in done:
            return []
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if found := visit(nxt):
                return found
        stack.pop()
        done.add(node)
        return []

    for start in sorted(edges):
        if found := visit(start):
            return found
    return []


def reachable(edges: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(edges.get(node, ()))
    return seen


def test_the_cycle_finder_finds_one() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def test_no_import_cycle_in_mailer() -> None:
    edges = graph()
    assert "mailer.accounts.oauth" in edges["mailer.accounts.credentials"]  # the walk sees
    assert cycle_in(edges) == []


def test_the_settings_module_imports_nothing_that_logs_in() -> None:
    edges = graph()
    logs_in = {"mailer.accounts.oauth", "mailer.accounts.credentials", "mailer.accounts.keystore"}
    assert not reachable(edges, "mailer.config") & logs_in
    source = (PACKAGE / "config.py").read_text()
    assert "keyring" not in source and "authlib" not in source

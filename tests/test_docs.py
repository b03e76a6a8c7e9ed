"""The README is the user's manual (issue 20): every command and option of `mailer --help`
is in it, and it names no command or option that does not exist.

click's command tree is walked, as sqlite-utils' docs test does.  A command is
documented by its row of the README's Commands table, which lists each of its options;
every `mailer ...` the README shows in code (a table cell, a span, a shell block) must
run: its command exists and each `--option` it passes is one of that command's."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from mailer.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]  # ("schedule", "install"); () is `mailer` itself
    documented: frozenset[str]  # the long options --help shows
    accepted: frozenset[str]  # every option spelling, hidden ones included
    hidden: bool


def commands() -> dict[tuple[str, ...], Command]:
    found: dict[tuple[str, ...], Command] = {}

    def walk(command: click.Command, path: tuple[str, ...]) -> None:
        options = [p for p in command.params if isinstance(p, click.Option)]
        shown = {o for p in options if not p.hidden for o in p.opts + p.secondary_opts}
        found[path] = Command(
            path,
            frozenset(o for o in shown if o.startswith("--")),
            frozenset({"--help", *(o for p in options for o in p.opts + p.secondary_opts)}),
            command.hidden,
        )
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                walk(sub, (*path, name))

    walk(main, ())
    return found


COMMANDS = commands()


def readme() -> str:
    return README.read_text(encoding="utf-8")


def commands_table(text: str) -> list[str]:
    """The rows of the table under '## Commands'."""
    section = text.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| `mailer")]


def code_in(text: str) -> list[str]:
    """Every inline code span and every line of a fenced block, shell comments removed."""
    fence = r"^ *```[^\n]*\n(.*?)^ *```"
    blocks = re.findall(fence, text, flags=re.DOTALL | re.MULTILINE)
    lines = [re.sub(r"(^|\s)#.*", "", line) for block in blocks for line in block.splitlines()]
    prose = re.sub(fence, "", text, flags=re.DOTALL | re.MULTILINE)
    return lines + re.findall(r"`([^`\n]+)`", prose)


def invocations(code: str) -> list[list[str]]:
    """The words after each `mailer` in a piece of code, up to a shell separator."""
    found = []
    # in a table cell "\|" is "|": between options an alternative ("--cron\|--systemd"),
    # else a pipe or the next subcommand; brackets mark what is optional
    code = re.sub(r"\\\|(?=-)", " ", code).replace("\\|", "|")
    code = code.replace("[", " ").replace("]", " ")
    for match in re.finditer(r"(?:^|[\s/(`])mailer((?: +[^\s;&|)`]+)*)", code):
        words = match[1]
        try:
            found.append(shlex.split(words))
        except ValueError:  # an unbalanced quote in a table cell's placeholder
            found.append(words.split())
    return [words for words in found if words and re.match(r"[a-z-]", words[0])]


def resolve(words: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """The command a list of words runs, and the options passed to it."""
    path: tuple[str, ...] = ()
    options = []
    for word in words:
        if word.startswith("-"):
            options.append(word.split("=", 1)[0])
        elif (*path, word) in COMMANDS and not options:
            path = (*path, word)
    return path, options


def rows_of(path: tuple[str, ...], rows: list[str]) -> list[str]:
    """The Commands-table rows that document `path`: those naming its top-level command."""
    return [row for row in rows if re.search(rf"`mailer {re.escape(path[0])}[` ]", row)]


@pytest.mark.parametrize(
    "path", [p for p, c in COMMANDS.items() if p and not c.hidden], ids=" ".join
)
def test_every_command_and_option_is_in_the_commands_table(path: tuple[str, ...]) -> None:
    rows = rows_of(path, commands_table(readme()))
    assert rows, f"`mailer {' '.join(path)}` has no row in the README's Commands table"
    cell = " ".join(row.split(" | ")[0] for row in rows)
    for word in path[1:]:
        assert re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", cell), (path, cell)
    named = set(re.findall(r"--[a-z][\w-]*", cell))
    missing = sorted(COMMANDS[path].documented - named)
    assert not missing, f"mailer {' '.join(path)}: {missing} missing from its row: {cell}"


def test_the_global_options_are_in_the_readme() -> None:
    text = readme()
    for option in COMMANDS[()].documented:
        assert f"mailer {option}" in text, option


def test_the_readme_runs_only_commands_and_options_that_exist() -> None:
    wrong = []
    ran = set()
    for code in code_in(readme()):
        for words in invocations(code):
            path, options = resolve(words)
            ran.add(path[:1])
            if not path:
                if words[0] not in COMMANDS[()].accepted:
                    wrong.append(f"`mailer {words[0]}`: no such command (in `{code}`)")
                continue
            accepted = COMMANDS[path].accepted | {
                o for p, c in COMMANDS.items() if p[: len(path)] == path for o in c.accepted
            }  # a table cell lists a group's subcommands' options together
            wrong += [
                f"`mailer {' '.join(path)} {option}`: no such option (in `{code}`)"
                for option in options
                if option not in accepted
            ]
    assert wrong == []
    assert {p[:1] for p, c in COMMANDS.items() if p and not c.hidden} <= ran  # all were read


def test_the_checks_find_what_they_look_for() -> None:
    """The parsing above on made-up README text, so that a check cannot pass by
    finding nothing."""
    text = (
        "# x\n## Commands\n\n| command | what |\n|---|---|\n"
        "| `mailer schedule install [--cron\\|--systemd] \\| remove` | x |\n\n## Next\n"
        "Run `mailer send contacts.csv --profile me.toml --bogus` and\n"
        "```sh\n0 9 * * * cd ~ && mailer run-due --rate 30/min  # mailer itself\n```\n"
    )
    assert commands_table(text) == [
        "| `mailer schedule install [--cron\\|--systemd] \\| remove` | x |"
    ]
    runs = [resolve(w) for c in code_in(text) for w in invocations(c)]
    assert (("run-due",), ["--rate"]) in runs
    assert (("send",), ["--profile", "--bogus"]) in runs
    assert (("schedule", "install"), ["--cron", "--systemd"]) in runs
    assert "--bogus" not in COMMANDS[("send",)].accepted

"""Issue 24, item 1: no writer follows a link or writes outside what it was asked to.

Every command (or core function) that writes a file runs with each of its targets
pre-created as a symlink to a file elsewhere, as another user can plant in a shared
folder: the link is replaced or the write refused, and the file it points to is never
touched.  A source scan keeps every new writer going through mailer/files.py."""

from __future__ import annotations

import ast
import os
import random
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from mailer.cli import main
from mailer.files import new_file, open_state, private_file
from mailer.journal import Journal

PROJECT = Path(__file__).resolve().parents[1]
PRECIOUS = "export PS1='mine'\n"


@dataclass(frozen=True)
class Planted:
    links: tuple[Path, ...]
    victim: Path

    def untouched(self) -> bool:
        return self.victim.read_text() == PRECIOUS and stat.S_IMODE(
            self.victim.stat().st_mode) == 0o644


def plant(tmp_path: Path, *targets: Path) -> Planted:
    """Each target a link to the victim's rc file (in a folder of its own)."""
    victim = tmp_path / "victim" / ".bashrc"
    victim.parent.mkdir(exist_ok=True)
    victim.write_text(PRECIOUS)
    victim.chmod(0o644)
    for target in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(victim)
    return Planted(targets, victim)


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def replaced(planted: Planted) -> bool:
    """Every link is now a 0600 file of mailer's own, and the victim as it was."""
    return planted.untouched() and all(
        not link.is_symlink() and stat.S_IMODE(link.stat().st_mode) == 0o600
        for link in planted.links
    )


def refused(result: Result, planted: Planted) -> bool:
    """A clear one-line error, no traceback, and every link (and its target) as it was."""
    return (
        result.exit_code != 0
        and not isinstance(result.exception, (OSError, AssertionError, TypeError))
        and "Traceback" not in result.output
        and planted.untouched()
        and all(link.is_symlink() for link in planted.links)
    )


def contacts_csv(tmp_path: Path) -> Path:
    path = tmp_path / "c.csv"
    path.write_text("Name,Email\nNo Address,\nAda,ada@example.com\n", encoding="utf-8")
    return path


# -- every writer -----------------------------------------------------------------------


def test_contacts_rejects_replaces_a_link(tmp_path: Path) -> None:
    rejects = tmp_path / "shared" / "rejects.csv"
    planted = plant(tmp_path, rejects)
    result = cli("contacts", str(contacts_csv(tmp_path)), "--rejects", str(rejects))
    assert result.exit_code == 0, result.output
    assert replaced(planted) and "No Address" in rejects.read_text(encoding="utf-8-sig")


def test_cards_review_replaces_links_at_the_csv_and_the_page(tmp_path: Path) -> None:
    from tests.cardgen import CardTruth, find_fonts, render
    from tests.tools import require_tool

    require_tool("fonts")
    card = tmp_path / "card.png"
    render(CardTruth("Anna Koch", "Projektleiterin", "Nordlicht Software GmbH",
                     "anna.koch@example.com", "+49301234567", "+491712345678",
                     "www.example.com"), find_fonts()[0], random.Random(5)).save(card)
    out = tmp_path / "shared" / "reviewed.csv"
    page = out.with_suffix(".html")
    planted = plant(tmp_path, out, page)
    result = cli("cards", "review", str(card), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert replaced(planted)
    assert "anna.koch@example.com" in out.read_text(encoding="utf-8-sig")
    assert "reviewed.csv" in page.read_text(encoding="utf-8")


def test_preview_out_as_a_link_is_refused(tmp_path: Path) -> None:
    victim_dir = tmp_path / "victim"
    out = tmp_path / "shared" / "preview"
    planted = plant(tmp_path)
    out.parent.mkdir()
    out.symlink_to(victim_dir, target_is_directory=True)
    result = cli("preview", str(contacts_csv(tmp_path)), "--profile",
                 str(PROJECT / "profile.example.toml"), "--out", str(out))
    assert result.exit_code == 2 and "symbolic link" in result.output
    assert planted.untouched() and sorted(os.listdir(victim_dir)) == [".bashrc"]


def test_the_problems_report_replaces_a_link(tmp_path: Path) -> None:
    from mailer.campaign.problems import write_problems
    from mailer.models import State
    from tests.smtpd import make_draft

    report = tmp_path / "state" / "problems-spring.csv"
    planted = plant(tmp_path, report)
    with Journal(tmp_path / "state" / "journal.sqlite3") as journal:
        journal.enqueue("spring", [make_draft("ada@example.com")])
        row = journal.claim("spring")
        assert row is not None
        journal.mark(row.id, State.FAILED, 550, "no such user")
        assert write_problems(journal, "spring") == report
    assert replaced(planted) and "no such user" in report.read_text(encoding="utf-8-sig")


INIT = ("init", "--name", "Alex Example", "--email", "alex@example.com",
        "--provider", "generic", "--host", "smtp.example.com", "--port", "587",
        "--security", "starttls", "--auth", "password")


def test_init_refuses_links_and_with_force_replaces_them(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    planted = plant(tmp_path, folder / "profile.toml", folder / ".env")
    assert refused(cli(*INIT, "--dir", str(folder)), planted)
    assert refused(cli(*INIT, "--dir", str(folder), "--force"), planted)  # no TOML to update
    # a link to a real profile: init reads it and writes the update beside it, not into it
    theirs = tmp_path / "victim" / "profile.toml"
    theirs.write_text('name = "Alex Example"\nemail = "alex@example.com"\n')
    (folder / "profile.toml").unlink()
    (folder / "profile.toml").symlink_to(theirs)
    result = cli(*INIT, "--dir", str(folder), "--force")
    assert result.exit_code == 0, result.output
    assert theirs.read_text() == 'name = "Alex Example"\nemail = "alex@example.com"\n'
    assert replaced(Planted((folder / "profile.toml", folder / ".env"), planted.victim))
    assert "smtp.example.com" in (folder / ".env").read_text()


def test_demo_replaces_links_at_its_inputs(tmp_path: Path) -> None:
    from mailer.demo.run import run_demo

    folder = tmp_path / "demo"
    planted = plant(tmp_path, folder / "contacts.csv.example", folder / "profile.example.toml")
    run_demo(folder)
    assert replaced(planted)


def test_the_ocr_cache_replaces_a_link(tmp_path: Path) -> None:
    from mailer.contacts.scans import _cache_read, _cache_write

    entry = tmp_path / "state" / "ocr-cache" / "v1" / "abc.json"
    planted = plant(tmp_path, entry)
    cards = [{"lines": [], "codes": ["BEGIN:VCARD"]}]
    _cache_write(entry, cards)
    assert replaced(planted) and _cache_read(entry) == cards


def test_a_journal_that_is_a_link_is_refused(tmp_path: Path) -> None:
    planted = plant(tmp_path, tmp_path / "mailer-home" / "journal.sqlite3")
    result = cli("suppress", "add", "ada@example.com")
    assert refused(result, planted) and "symbolic link" in result.output


def test_the_run_due_lock_is_never_truncated_through_a_link(tmp_path: Path) -> None:
    from mailer.errors import ConfigError
    from mailer.schedule.runlock import RunLock

    planted = plant(tmp_path, tmp_path / "state" / "run-due.lock")
    with pytest.raises(ConfigError, match="symbolic link"), RunLock(tmp_path / "state"):
        pass
    assert planted.untouched()


def test_systemd_units_replace_links(tmp_path: Path) -> None:
    from mailer.schedule.timer import UNIT, Job, Tools, install

    units = tmp_path / "units"
    planted = plant(tmp_path, units / f"{UNIT}.service", units / f"{UNIT}.timer")
    job = Job(command=("/opt/mailer/bin/mailer", "run-due"), workdir=tmp_path,
              log=tmp_path / "state" / "run-due.log", mailer_home=str(tmp_path / "state"))
    install("systemd", job, Tools(systemctl=str(tmp_path / "no-systemctl"), unit_dir=units))
    assert replaced(planted) and "run-due" in (units / f"{UNIT}.service").read_text()


# -- the one writer ---------------------------------------------------------------------


def test_private_file_without_replace_refuses_a_dangling_link(tmp_path: Path) -> None:
    link = tmp_path / "out.csv"
    link.symlink_to(tmp_path / "not-yet")
    with pytest.raises(FileExistsError), private_file(link, replace=False) as out:
        out.write("x")
    assert not (tmp_path / "not-yet").exists() and os.listdir(tmp_path) == ["out.csv"]


def test_new_file_and_state_files_refuse_links(tmp_path: Path) -> None:
    planted = plant(tmp_path, tmp_path / "a", tmp_path / "b")
    with pytest.raises(FileExistsError):
        new_file(tmp_path / "a")
    with pytest.raises(OSError, match="symbolic link"):
        open_state(tmp_path / "b")
    assert planted.untouched()


@pytest.fixture
def no_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.usefixtures("no_umask")
def test_every_folder_mailer_creates_is_private_whatever_the_umask(tmp_path: Path) -> None:
    """The core, called without the CLI (which sets umask 077 first): each folder it
    creates, parents included, is 0700."""
    from mailer.accounts.setup import write_private
    from mailer.campaign.plan import plan
    from mailer.campaign.preview import write_preview
    from mailer.compose.message import Composer
    from mailer.compose.profile import load_profile
    from mailer.config import state_dir
    from mailer.models import Contact

    composer = Composer(load_profile(PROJECT / "profile.example.toml"))
    write_preview(plan([Contact(email="ada@example.com", source="c.csv:2")], composer, None),
                  tmp_path / "a" / "b" / "preview")
    state_dir({"MAILER_HOME": str(tmp_path / "c" / "home")})
    Journal(tmp_path / "d" / "e" / "journal.sqlite3").close()
    write_private(tmp_path / "f" / "g" / "profile.toml", "x = 1\n", replace=False)
    created = [p for p in tmp_path.rglob("*") if p.is_dir()]
    assert len(created) == 9 and {
        p.relative_to(tmp_path).as_posix(): oct(stat.S_IMODE(p.stat().st_mode)) for p in created
    } == {p.relative_to(tmp_path).as_posix(): "0o700" for p in created}


# -- no writer outside mailer/files.py --------------------------------------------------

# The calls that create or write a file or a folder; files.py is their one home.
WRITING_CALLS = {"write_text", "write_bytes", "mkdir", "makedirs", "mkstemp", "mkdtemp",
                 "NamedTemporaryFile", "copyfile", "copytree", "symlink_to", "hardlink_to",
                 "touch"}
SHUTIL_CALLS = {"copy", "copy2", "move"}  # as methods, other names (an image's copy())
READ_MODES = {"r", "rb", "rt", "br"}


WRITE_FLAGS = {"O_CREAT", "O_WRONLY", "O_RDWR", "O_TRUNC", "O_APPEND"}


def writers(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute | ast.Name):
            continue
        method = isinstance(node.func, ast.Attribute)
        name = node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
        owner = node.func.value if isinstance(node.func, ast.Attribute) else None
        if name in WRITING_CALLS or (
            name in SHUTIL_CALLS and isinstance(owner, ast.Name) and owner.id == "shutil"
        ):
            yield node.lineno, name
        elif name == "open" and isinstance(owner, ast.Name) and owner.id == "os":
            flags = {n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)}
            if flags & WRITE_FLAGS:
                yield node.lineno, "os.open"
        elif name == "open":  # Path.open(mode) or open(path, mode)
            given = node.args[0 if method else 1:][:1] + [
                k.value for k in node.keywords if k.arg == "mode"]
            mode = given[0].value if given and isinstance(given[0], ast.Constant) else "r"
            if mode not in READ_MODES:
                yield node.lineno, f"open({mode!r})"


def test_no_module_but_files_py_writes_a_file(project_root: Path) -> None:
    found = []
    for path in sorted((project_root / "mailer").rglob("*.py")):
        if path.name == "files.py" and path.parent.name == "mailer":
            continue
        found += [f"{path.relative_to(project_root)}:{line}: {what}"
                  for line, what in writers(ast.parse(path.read_text(encoding="utf-8")))]
    assert found == []


def test_the_scan_finds_a_writer() -> None:
    sample = ("import os\nPath('x').write_text('y')\nopen('x', 'w')\nPath('x').open('rb')\n"
              "os.open('x', os.O_RDONLY)\nos.open('x', os.O_RDWR | os.O_CREAT)\n"
              "image.copy()\nshutil.copy('a', 'b')\n")
    assert [what for _, what in writers(ast.parse(sample))] == [
        "write_text", "open('w')", "os.open", "copy"]


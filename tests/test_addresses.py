"""One address validator: import, the profile and `suppress add` give the same
verdict on every address, and say the same reason when they refuse it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mailer.addresses import InvalidAddress, address_key, normalize_address
from mailer.cli import main
from mailer.compose.profile import load_profile
from mailer.contacts import load_contacts
from mailer.errors import ConfigError

ACCEPTED = ["someone@host.invalid", "ada@example.com", "Jürgen@Example.ORG", "ä@bücher.example",
            "tester@mail.test", "anna@пример.рф", "ben@xn--e1afmkfd.xn--p1ai", "cy@example.co.uk"]
REFUSED = ["not-an-address", "two@@example.com", "dot.@example.com", "no-tld@localhost",
           "klaus@gmx", "klaus@gmx.d", "klaus.fischer@example"]


# issue 23 item 2: domains no mail can reach, refused with the reason in mailer's words
UNREACHABLE = [
    ("klaus@gmx", "the domain 'gmx' has no dot"),
    ("klaus.fischer@example", "the domain 'example' has no dot"),  # a typo for .example.com
    ("tester@test", "the domain 'test' has no dot"),
    ("klaus@gmx.d", "'.d' is not a top-level domain"),
    ("klaus@gmx.dee", "'.dee' is not a top-level domain"),
    ("a@192.168.1.20", "'.20' is not a top-level domain"),
    ("a@printer.local", "'.local' is a special-use name"),
    ("a@box.localhost", "'.localhost' is a special-use name"),
]


def verdict_of_import(address: str, tmp_path: Path) -> str:
    path = tmp_path / "c.csv"
    path.write_text(f"Name,Email\nX,{address}\n", encoding="utf-8")
    result = load_contacts([path])
    return result.contacts[0].email if result.contacts else "refused: " + result.rejected[0].reason


def verdict_of_profile(address: str, tmp_path: Path) -> str:
    path = tmp_path / "profile.toml"
    path.write_text(f'name = "A"\nemail = "{address}"\n', encoding="utf-8")
    try:
        return load_profile(path).email
    except ConfigError as err:
        return "refused: " + str(err)


def verdict_of_suppress(address: str) -> str:
    result = CliRunner().invoke(main, ["suppress", "add", address])
    if result.exit_code != 0:
        return "refused: " + result.output
    return json.loads(CliRunner().invoke(main, ["suppress", "list", "--json"]).output)[-1][
        "address"]


@pytest.mark.parametrize("address", ACCEPTED + REFUSED)
def test_one_verdict_everywhere(address: str, tmp_path: Path) -> None:
    try:
        valid: str | None = normalize_address(address)
        why = ""
    except InvalidAddress as err:
        valid, why = None, str(err)
    imported = verdict_of_import(address, tmp_path)
    profile = verdict_of_profile(address, tmp_path)
    suppressed = verdict_of_suppress(address)
    if valid is None:
        for answer in (imported, profile, suppressed):
            assert answer.startswith("refused: ") and why in answer, answer
        return
    assert imported == valid
    assert suppressed == address_key(valid)  # the list stores the comparison key
    if valid.isascii():  # the sender's own address must also be ASCII (no SMTPUTF8 envelope)
        assert profile == valid
    else:
        assert profile.startswith("refused: ") and "must be ASCII" in profile


def test_the_placeholder_domain_passes_everywhere(tmp_path: Path) -> None:
    """`.invalid` is what exporters write for placeholder contacts: once refused by
    `suppress add` although import accepted it."""
    assert verdict_of_import("someone@host.invalid", tmp_path) == "someone@host.invalid"
    assert verdict_of_suppress("someone@host.invalid") == "someone@host.invalid"
    # and Thunderbird's placeholder for a contact without an address, with no dot
    assert verdict_of_import("contact1@Invalid", tmp_path) == "contact1@invalid"


@pytest.mark.parametrize(("address", "reason"), UNREACHABLE)
def test_an_address_no_mail_can_reach_is_refused_with_the_reason(
    address: str, reason: str, tmp_path: Path
) -> None:
    with pytest.raises(InvalidAddress) as refused:
        normalize_address(address)
    assert str(refused.value).startswith(reason)
    assert verdict_of_import(address, tmp_path).startswith("refused: ")
    assert reason in verdict_of_import(address, tmp_path)


@pytest.mark.parametrize("top", ["example", "test", "invalid"])
def test_names_reserved_for_documentation_and_tests_are_kept(top: str) -> None:
    """RFC 2606: placeholder contacts and examples use them; the user sees them on import."""
    assert normalize_address(f"Someone@Host.{top.upper()}") == f"Someone@host.{top}"


def test_the_top_level_domains_are_those_of_the_whole_list() -> None:
    """The list is read without its ASCII copies (faster): every top-level name it has,
    in ASCII and as xn--, and names it lacks, get the answer the whole list gives."""
    from publicsuffixlist import PSLFILE, PublicSuffixList

    from mailer.addresses import is_top_level_domain

    whole = PublicSuffixList(only_icann=True, accept_unknown=False)
    rules = Path(PSLFILE).read_text(encoding="utf-8").split("===BEGIN ICANN DOMAINS===")[1]
    tops = {line.split()[0].rpartition(".")[2].lstrip("!*").lower()
            for line in rules.split("===END ICANN DOMAINS===")[0].splitlines()
            if line.strip() and not line.startswith("//")}
    labels = {top.encode("idna").decode("ascii") for top in tops}
    assert len(labels) > 1000 and "xn--p1ai" in labels and "de" in labels
    labels |= {"d", "tld", "xn--", "xn--zzzz-zzz", "xn--p1ai0", "xn--9", "localhost", "co"}
    for label in sorted(labels):
        assert is_top_level_domain(label) == whole.is_public(label), label

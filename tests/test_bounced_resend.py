"""After a bounce: `mailer inbox` names the campaign and the files it was sent
from, and `resend --bounced` (without --campaign) corrects the address in the
campaign the bounce was recorded in, not in the latest one.  Real aiosmtpd,
real Dovecot, real journal."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from click.testing import CliRunner, Result

from mailer.cli.app import main
from tests.imapd import Dovecot
from tests.smtpd import SmtpServer
from tests.test_inbox import fixture


def mailer(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def write(path: Path, people: list[tuple[str, str]]) -> None:
    path.write_text("Name,Email\n" + "".join(f"{n},{e}\n" for n, e in people), encoding="utf-8")


def recipients(campaign: str) -> dict[str, str]:
    result = mailer("status", "--campaign", campaign, "--json")
    return {r["recipient"]: r["state"] for r in json.loads(result.output)["recipients"]}


def test_a_bounce_is_corrected_in_its_own_campaign_and_the_advice_names_its_files(
    work: Path, server: SmtpServer, imap_env: Dovecot
) -> None:
    (work / "lists").mkdir()
    fair, later = work / "lists" / "fair 2026.csv", work / "later.csv"
    write(fair, [("Dana", "dsn@example.com"), ("Quinn", "quinn@example.com")])
    write(later, [("Lee", "lee@example.org")])
    for path in (fair, later):  # the bounced campaign is not the latest
        sent = mailer("send", str(path.relative_to(work)), "--profile", "profile.toml",
                      "--rate", "none", "--yes")
        assert sent.exit_code == 0, sent.output
    dana = mailer("status", "--campaign", "fair 2026", "--json")
    message_id = next(r["message_id"] for r in json.loads(dana.output)["recipients"]
                      if r["recipient"] == "dsn@example.com")
    imap_env.deliver(fixture("bounce_dsn.eml", message_id))

    sorted_inbox = mailer("inbox", "--yes")
    assert sorted_inbox.exit_code == 0, sorted_inbox.output
    advice = shlex.join(["mailer", "resend", "lists/fair 2026.csv", "--profile", "profile.toml",
                         "--bounced", "--campaign", "fair 2026"])
    assert f"Campaign 'fair 2026': fix the bounced addresses in lists/fair 2026.csv, then " \
           f"`{advice}`." in sorted_inbox.output
    assert "contacts.csv" not in sorted_inbox.output

    write(fair, [("Dana", "dana@example.com"), ("Quinn", "quinn@example.com")])
    resent = mailer("resend", "lists/fair 2026.csv", "--profile", "profile.toml", "--bounced",
                    "--rate", "none", "--yes")
    assert resent.exit_code == 0, resent.output
    assert "Campaign 'fair 2026'" in resent.output
    assert "dsn@example.com -> dana@example.com" in resent.output
    assert recipients("fair 2026") == {"dana@example.com": "sent", "quinn@example.com": "sent"}
    assert recipients("later") == {"lee@example.org": "sent"}
    assert server.recipients().count("dana@example.com") == 1


def test_bounces_in_two_campaigns_need_the_campaign_named(
    work: Path, server: SmtpServer, imap_env: Dovecot
) -> None:
    for name, address in (("one", "dsn@example.com"), ("two", "dsn@example.org")):
        write(work / f"{name}.csv", [("Dana", address)])
        assert mailer("send", f"{name}.csv", "--profile", "profile.toml", "--rate", "none",
                      "--yes").exit_code == 0
        message_id = json.loads(mailer("status", "--campaign", name, "--json").output)[
            "recipients"][0]["message_id"]
        raw = fixture("bounce_dsn.eml", message_id).replace(b"dsn@example.com",
                                                            address.encode())
        imap_env.deliver(raw)
    assert mailer("inbox", "--yes").exit_code == 0
    assert set(recipients("one").values()) == set(recipients("two").values()) == {"bounced"}
    refused = mailer("resend", "--bounced", "--yes")
    assert refused.exit_code == 2
    assert "'one', 'two'" in refused.output and "--campaign" in refused.output

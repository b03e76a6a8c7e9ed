"""The campaign service without the command line: resend, holds and run-due as
a program (or a test) drives them, against a real journal and a real aiosmtpd."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from mailer.campaign import holds
from mailer.campaign.events import (
    Declined,
    Finished,
    PlanSummary,
    ResendRequest,
    ResendShown,
    Scheduled,
    Sending,
    SendRequest,
)
from mailer.campaign.service import Campaigns
from mailer.compose.message import Composer
from mailer.compose.profile import load_profile
from mailer.errors import AuthError, ConfigError
from mailer.journal import Journal
from mailer.models import State
from mailer.schedule.when import Timing
from tests.conftest import PEOPLE
from tests.smtpd import SmtpServer, make_draft
from tests.test_resend import STATES, journal_with_every_state

FAST = Sending(rates=("none",))
NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)


def service() -> Campaigns:
    return Campaigns(env=dict(os.environ))


def request(work: Path, at: str | None = None, *, assume_yes: bool = False) -> SendRequest:
    composer = Composer(load_profile(work / "profile.toml"))
    timing = Timing.of(at, NOW.isoformat())
    return SendRequest([work / "contacts.csv"], composer, "contacts", timing, FAST,
                       assume_yes=assume_yes)


def shown_and(answer: bool, seen: list[PlanSummary]) -> Callable[[PlanSummary], bool]:
    def confirm(summary: PlanSummary) -> bool:
        seen.append(summary)
        return answer
    return confirm


# -- send: ask, decline, schedule ----------------------------------------------------------


def test_send_asks_once_with_the_plan_and_a_no_leaves_the_journal_as_it_was(
    work: Path, server: SmtpServer, isolated_env: Path
) -> None:
    seen: list[PlanSummary] = []
    assert service().send(request(work), shown_and(False, seen)) == Declined()
    assert [(s.campaign, s.to_send, s.added, s.tally.new) for s in seen] == [("contacts", 3, 3, 3)]
    assert service().campaigns() == [] and server.received == []
    done = service().send(request(work), shown_and(True, seen))
    assert isinstance(done, Finished) and done.summary.sent == 3 and done.problems is None
    assert sorted(server.recipients()) == sorted(PEOPLE)


def test_send_at_a_later_time_queues_with_the_time_and_sends_nothing(
    work: Path, server: SmtpServer
) -> None:
    done = service().send(request(work, "in 2h", assume_yes=True), lambda _: False)
    assert isinstance(done, Scheduled) and (done.queued, done.added) == (3, 3)
    assert done.at == NOW + timedelta(hours=2)
    [info] = service().campaigns()
    assert info.scheduled_at == (NOW + timedelta(hours=2)).timestamp()
    assert server.received == []


# -- holds ----------------------------------------------------------------------------------


def test_holds_refuse_a_cancelled_campaign_and_an_early_send(journal: Journal) -> None:
    journal.enqueue("later", [make_draft("a@example.com")], scheduled_at=NOW.timestamp() + 60)
    with pytest.raises(ConfigError, match="scheduled for"):
        holds.check_can_queue(journal, "later", NOW, at_given=False)
    holds.check_can_queue(journal, "later", NOW, at_given=True)  # --at moves it
    assert holds.due_later(journal.campaign("later"), NOW.timestamp()) == NOW.timestamp() + 60
    assert holds.due_later(journal.campaign("later"), NOW.timestamp() + 60) is None
    journal.cancel("later")
    with pytest.raises(ConfigError, match="cancelled"):
        holds.check_can_queue(journal, "later", NOW, at_given=True)
    with pytest.raises(ConfigError, match="cancelled"):
        holds.check_can_resend(journal, "later")
    holds.check_can_queue(journal, "new", NOW, at_given=False)  # unknown: nothing to refuse


def test_an_account_error_holds_the_campaign_until_resumed(
    work: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    monkeypatch.setenv("MAILER_SMTP_PASSWORD", "wrong")
    with pytest.raises(AuthError, match="is held with 3 message"):
        service().send(request(work, assume_yes=True), lambda _: True)
    [info] = service().campaigns()
    assert info.paused_at is not None and "refused the login" in info.held_reason
    monkeypatch.setenv("MAILER_SMTP_PASSWORD", "app-password")
    assert list(service().run_due(NOW + timedelta(days=1), FAST)) == []  # held: left alone
    resumed = service().resume("contacts", FAST)
    assert resumed.summary.sent == 3
    [info] = service().campaigns()
    assert (info.paused_at, info.held_reason) == (None, "")


# -- run-due --------------------------------------------------------------------------------


def test_run_due_sends_due_campaigns_oldest_first_and_skips_paused_and_later(
    server: SmtpServer, isolated_env: Path
) -> None:
    with Journal(isolated_env / "journal.sqlite3") as journal:
        journal.enqueue("first", [make_draft("a@example.com")])
        journal.enqueue("paused", [make_draft("b@example.com")])
        journal.pause("paused")
        journal.enqueue("later", [make_draft("c@example.com")],
                        scheduled_at=(NOW + timedelta(hours=1)).timestamp())
        journal.enqueue("second", [make_draft("d@example.com")])
    summaries = list(service().run_due(NOW, FAST))
    assert [(s.campaign, s.sent) for s in summaries] == [("first", 1), ("second", 1)]
    assert server.recipients() == ["a@example.com", "d@example.com"]
    assert list(service().run_due(NOW, FAST)) == []  # nothing left that is due
    assert [s.campaign for s in service().run_due(NOW + timedelta(hours=2), FAST)] == ["later"]


def test_run_due_without_a_journal_needs_no_account(isolated_env: Path) -> None:
    assert list(service().run_due(NOW, FAST)) == []  # no SMTP settings asked for
    assert not (isolated_env / "journal.sqlite3").exists()


# -- resend ---------------------------------------------------------------------------------


def resend(states: tuple[State, ...], only: tuple[str, ...] = ()) -> Finished | Declined | int:
    views: list[ResendShown] = []
    result = service().resend(ResendRequest("event", states, only), FAST, views.append,
                              lambda view: True)
    assert len(views) == 1
    return result


def test_resend_queues_the_chosen_states_and_never_a_sent_row(
    server: SmtpServer, isolated_env: Path
) -> None:
    journal_with_every_state(isolated_env)
    done = resend((State.FAILED,))
    assert isinstance(done, Finished) and done.summary.sent == 1
    assert server.recipients() == ["failed@example.com"]
    assert resend((State.UNKNOWN,), only=("sent@example.com",)) == Declined(empty=True)
    done = resend((State.DEFERRED, State.UNKNOWN))
    assert isinstance(done, Finished)
    assert sorted(server.recipients()) == sorted(a for a in STATES if a != "sent@example.com")


def test_resend_into_a_campaign_scheduled_for_later_only_queues(
    server: SmtpServer, isolated_env: Path
) -> None:
    journal_with_every_state(isolated_env)
    with Journal(isolated_env / "journal.sqlite3") as journal:
        journal.set_schedule("event", (datetime.now(UTC) + timedelta(days=1)).timestamp())
    assert resend((State.FAILED,)) == 1
    assert server.received == []


def test_a_declined_resend_changes_nothing(server: SmtpServer, isolated_env: Path) -> None:
    journal_with_every_state(isolated_env)
    result = service().resend(ResendRequest("event", (State.FAILED,)), FAST, lambda _: None,
                              lambda _: False)
    assert result == Declined()
    found = service().status("event")
    assert found is not None
    _, counts, _, _ = found
    assert counts[State.FAILED] == 1 and counts[State.QUEUED] == 0

"""Settings: where they come from, what is refused, and that the password stays hidden."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailer.config import environment, smtp_settings, state_dir
from mailer.errors import ConfigError


def test_env_file_values_are_read_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("MAILER_SMTP_HOST=smtp.example.com\nMAILER_SMTP_PORT=2525\n")
    monkeypatch.setenv("MAILER_SMTP_PORT", "587")
    env = environment(env_file)
    assert env["MAILER_SMTP_HOST"] == "smtp.example.com"
    assert env["MAILER_SMTP_PORT"] == "587"


def test_env_file_from_variable_and_disabled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text("MAILER_SMTP_HOST=mail.example.org\n")
    monkeypatch.setenv("MAILER_ENV_FILE", str(env_file))
    assert environment()["MAILER_SMTP_HOST"] == "mail.example.org"
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("MAILER_SMTP_HOST=should-not-be-read.example.net\n")
    monkeypatch.setenv("MAILER_ENV_FILE", "")
    assert "MAILER_SMTP_HOST" not in environment()


def test_defaults_by_security_mode() -> None:
    assert smtp_settings({"MAILER_SMTP_HOST": "smtp.example.com"}).port == 587
    tls = smtp_settings({"MAILER_SMTP_HOST": "smtp.example.com", "MAILER_SMTP_SECURITY": "TLS"})
    assert (tls.security, tls.port) == ("tls", 465)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "No SMTP server configured: run `mailer init`"),
        ({"MAILER_SMTP_HOST": "h.example.com", "MAILER_SMTP_SECURITY": "ssl"}, "is not one of"),
        ({"MAILER_SMTP_HOST": "h.example.com", "MAILER_SMTP_PORT": "x"}, "is not a port number"),
        ({"MAILER_SMTP_HOST": "h.example.com", "MAILER_SMTP_PASSWORD_TIMEOUT": "-5",
          "MAILER_SMTP_USERNAME": "a@example.com"}, "more than 0"),
        ({"MAILER_SMTP_HOST": "h.example.com", "MAILER_SMTP_PORT": "70000"}, "out of range"),
        (
            {"MAILER_SMTP_HOST": "smtp.example.com", "MAILER_SMTP_SECURITY": "none"},
            "unencrypted",
        ),
        ({"MAILER_SMTP_HOST": "h.example.com", "MAILER_SMTP_PASSWORD": "s3cret"}, "USERNAME"),
        # 0 or less would make every step "time out" at once, blamed on host and port
        ({"MAILER_SMTP_HOST": "h.example.com", "MAILER_SMTP_TIMEOUT": "-1"}, "more than 0"),
        ({"MAILER_SMTP_HOST": "h.example.com", "MAILER_SMTP_TIMEOUT": "0"}, "more than 0"),
        ({"MAILER_SMTP_HOST": "h.example.com", "MAILER_SMTP_TIMEOUT": "soon"}, "seconds"),
    ],
)
def test_invalid_settings_are_refused_with_a_reason(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        smtp_settings(env)
    assert "\n" not in str(err.value)
    if message in ("is not one of", "out of range", "more than 0", "seconds"):  # a bad value
        assert ".env or the environment" in str(err.value)


def test_plain_smtp_allowed_on_loopback_or_when_explicitly_wanted() -> None:
    assert smtp_settings(
        {"MAILER_SMTP_HOST": "127.0.0.1", "MAILER_SMTP_SECURITY": "none"}
    ).is_loopback
    remote = smtp_settings(
        {
            "MAILER_SMTP_HOST": "smtp.example.com",
            "MAILER_SMTP_SECURITY": "none",
            "MAILER_SMTP_ALLOW_INSECURE": "1",
        }
    )
    assert remote.allow_insecure and not remote.is_loopback


def test_password_never_appears_in_repr() -> None:
    settings = smtp_settings(
        {
            "MAILER_SMTP_HOST": "smtp.example.com",
            "MAILER_SMTP_USERNAME": "me@example.com",
            "MAILER_SMTP_PASSWORD": "hunter2-secret",
        }
    )
    assert settings.password == "hunter2-secret"
    assert "hunter2-secret" not in repr(settings)


def test_state_dir_is_created(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "state"
    assert state_dir({"MAILER_HOME": str(target)}) == target
    assert target.is_dir()


def test_an_env_file_that_cannot_be_used_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAILER_ENV_FILE", str(tmp_path / "missing.env"))
    with pytest.raises(ConfigError, match=r"MAILER_ENV_FILE=.*missing\.env' is not a file"):
        environment()
    latin = tmp_path / ".env"  # saved as cp1252 by an editor: was a UnicodeDecodeError
    latin.write_bytes("MAILER_SMTP_HOST=smtp.example.com\n# Jürgen\n".encode("cp1252"))
    monkeypatch.setenv("MAILER_ENV_FILE", str(latin))
    with pytest.raises(ConfigError, match=r"Cannot read .*\.env: .*UTF-8") as err:
        environment()
    assert "\n" not in str(err.value)

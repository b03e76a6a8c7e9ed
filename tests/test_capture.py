"""The demo's capture server: a real SMTP dialogue, stored byte for byte in a Maildir."""

from __future__ import annotations

import mailbox
import smtplib
from pathlib import Path

import pytest

from mailer.demo.capture import CaptureServer
from mailer.errors import ConfigError


def test_capture_stores_each_recipient_in_maildir(tmp_path: Path) -> None:
    body = b"Subject: hello\r\nMessage-ID: <1@example.com>\r\n\r\nBody line\r\n"
    with (
        CaptureServer(tmp_path / "Maildir") as server,
        smtplib.SMTP(server.host, server.port) as client,
    ):
        client.sendmail("me@example.com", ["a@example.org", "b@example.net"], body)
    messages = list(mailbox.Maildir(tmp_path / "Maildir"))
    assert sorted(m["Delivered-To"] for m in messages) == ["a@example.org", "b@example.net"]
    assert all(m["Return-Path"] == "<me@example.com>" for m in messages)
    assert all(m.get_payload() == "Body line\n" for m in messages)


def test_capture_refuses_non_loopback(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="loopback"):
        CaptureServer(tmp_path / "Maildir", host="0.0.0.0")


def test_a_taken_port_is_refused_with_the_next_step(tmp_path: Path) -> None:
    with CaptureServer(tmp_path / "first") as first:
        with pytest.raises(ConfigError, match=r"another capture server\?\): stop it, or choose "
                                              r"another --port") as err:
            CaptureServer(tmp_path / "second", port=first.port).__enter__()
        assert f"127.0.0.1:{first.port}" in str(err.value)

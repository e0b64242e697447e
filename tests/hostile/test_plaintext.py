"""Plain-text services on a port probed as implicit TLS: not_tls, saying what they look like."""

from __future__ import annotations

import asyncio

import pytest

from certvigil.observed.handshake import FailureKind, ProbeFailure
from certvigil.probe.options import ProbeOptions
from certvigil.probe.tls import probe_tls
from certvigil.targets.target import Target
from tests.hostile.servers import PlainGreetingServer

OPTIONS = ProbeOptions(connect_timeout_s=1.0, handshake_timeout_s=1.0)

# (greeting, whether the service waits for the client to speak, expected words)
GREETINGS = {
    "smtp": (b"220 mx.example.test ESMTP Postfix\r\n", False, "SMTP: try --starttls smtp"),
    "imap": (b"* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.\r\n", False,
             "IMAP: try --starttls imap"),
    "pop3": (b"+OK Dovecot ready.\r\n", False, "POP3: try --starttls pop3"),
    "ftp": (b"220 (vsFTPd 3.0.5)\r\n", False, "FTP: try --starttls ftp"),
    "xmpp": (b"<?xml version='1.0'?><stream:stream xmlns='jabber:client'><stream:error>"
             b"<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>",
             True, "XMPP: try --starttls xmpp"),
    "http": (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", True, "plain HTTP"),
    "postgres": (b"E\x00\x00\x00\x5bSFATAL\x00VFATAL\x00C08P01\x00Minvalid length of startup "
                 b"packet\x00\x00", True, "PostgreSQL: try --starttls postgres"),
}  # fmt: skip


@pytest.mark.parametrize("name", list(GREETINGS))
def test_plaintext_service_is_recognised(name: str) -> None:
    """The failure is not_tls, quotes the start of the answer and names the service."""
    greeting, after_client, words = GREETINGS[name]
    with PlainGreetingServer(greeting, after_client=after_client) as at:
        result = asyncio.run(
            probe_tls(Target(host=at.host, port=at.port), address=at.host, options=OPTIONS)
        )
    assert isinstance(result, ProbeFailure), result
    assert result.kind is FailureKind.NOT_TLS
    assert words in result.detail


def test_control_characters_in_the_answer_are_shown_escaped() -> None:
    """Terminal escapes a server sends are quoted visibly, never passed through."""
    greeting = "220 evil\x1b[2J\u202e ESMTP\r\n".encode()
    with PlainGreetingServer(greeting) as at:
        result = asyncio.run(
            probe_tls(Target(host=at.host, port=at.port), address=at.host, options=OPTIONS)
        )
    assert isinstance(result, ProbeFailure), result
    assert "\x1b" not in result.detail and "\u202e" not in result.detail
    assert "\\x1b[2J" in result.detail and "\\u202e" in result.detail

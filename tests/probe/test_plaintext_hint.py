"""Recognising a plain-text service from its first bytes, and showing them safely."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certvigil.probe.starttls import plaintext_service_hint, quoted_start
from certvigil.text_escape import is_hidden


@pytest.mark.parametrize(
    ("first_bytes", "words"),
    [
        (b"220 mx.example.com ESMTP Postfix (Debian)\r\n", "SMTP: try --starttls smtp"),
        (b"220-mail.example.com Microsoft ESMTP MAIL Service\r\n", "SMTP: try --starttls smtp"),
        (b"220 ProFTPD Server (Debian)\r\n", "FTP: try --starttls ftp"),
        (b"220 welcome\r\n", "SMTP or FTP"),
        (b"* OK [CAPABILITY IMAP4rev1] ready\r\n", "IMAP: try --starttls imap"),
        (b"+OK POP3 ready\r\n", "POP3: try --starttls pop3"),
        (b"<?xml version='1.0'?><stream:stream>", "XMPP: try --starttls xmpp"),
        (b"HTTP/1.1 400 Bad Request\r\n", "plain HTTP"),
        (b"SSH-2.0-OpenSSH_9.2p1\r\n", "SSH"),
        (b"E\x00\x00\x00\x50SFATAL\x00", "PostgreSQL: try --starttls postgres"),
        (b"\x30\x84\x00\x00\x00\x30\x02\x01\x00\x78\x84\x00\x00\x00\x27\x0a\x01\x02\x04\x00"
         b"\x04\x00\x8a\x16" + b"1.3.6.1.4.1.1466.20036", "LDAP: try --starttls ldap"),
    ],
)  # fmt: skip
def test_greeting_names_the_service(first_bytes: bytes, words: str) -> None:
    """Each common greeting is recognised and the matching option suggested."""
    hint = plaintext_service_hint(first_bytes)
    assert hint is not None and words in hint


@pytest.mark.parametrize("first_bytes", [b"", b"\x00\x01garbage", b"2200 no", b"hello"])
def test_unknown_bytes_get_no_hint(first_bytes: bytes) -> None:
    """Bytes that match no protocol give no hint rather than a wrong one."""
    assert plaintext_service_hint(first_bytes) is None


def test_quoted_start_escapes_controls_and_bidi() -> None:
    """Terminal escapes, NUL, newlines and bidi overrides are shown as escapes."""
    shown = quoted_start("a\x1b[31m\x00\r\n\u202eb".encode())
    assert shown == "a\\x1b[31m\\x00\\r\\n\\u202eb"


@given(st.binary(max_size=300))
def test_quoted_start_shows_no_hidden_character(data: bytes) -> None:
    """Whatever the bytes, the shown text has no hidden character and is bounded."""
    shown = quoted_start(data)
    assert not any(is_hidden(c) for c in shown)
    assert len(shown) <= 61 * 10

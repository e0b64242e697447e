"""Channels deliver to real receivers on loopback: SMTP via apprise, JSON webhooks."""

from __future__ import annotations

import asyncio
import email
from datetime import UTC, datetime
from email.policy import default as default_policy

import pytest

from certvigil.alerts.channels import (
    DELIVERY_ID_HEADER,
    IDEMPOTENCY_KEY_HEADER,
    AppriseChannel,
    OutgoingMessage,
    WebhookChannel,
    channel_for,
)
from certvigil.alerts.rules import EventAction
from certvigil.analysis.model import Severity
from certvigil.errors import DeliveryError

from .receivers import http_receiver, smtp_server

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _message(delivery_id: int = 7, event: EventAction = EventAction.OPEN) -> OutgoingMessage:
    return OutgoingMessage(
        delivery_id=delivery_id,
        idempotency_key=f"certvigil-test-key-{delivery_id}",
        alert_id=3,
        event=event,
        kind="expiry_threshold",
        severity=Severity.CRITICAL,
        state="open",
        dedup_key="expiry_threshold|www.example.test:443|ab|7d",
        endpoint="www.example.test:443",
        certificate_sha256="ab" * 32,
        title="Certificate expires in 6.5 days: www.example.test:443",
        message="www.example.test (abab) on www.example.test:443 expires 2026-03-08.",
        opened_at_utc=NOW,
        occurred_at_utc=NOW,
    )


def test_apprise_mailto_delivers_to_a_real_smtp_server() -> None:
    """An apprise mailto:// URL delivers the alert to a local SMTP server, no TLS, no auth."""
    with smtp_server() as (port, mails):
        url = (
            f"mailto://127.0.0.1:{port}?mode=insecure"
            "&from=certvigil@example.test&to=ops@example.test"
        )
        asyncio.run(AppriseChannel(url, timeout_s=20).send(_message()))
    assert len(mails) == 1
    parsed = email.message_from_bytes(mails[0].content, policy=default_policy)
    assert mails[0].rcpt_tos == ["ops@example.test"]
    assert parsed["Subject"] == (
        "[certvigil] CRITICAL: Certificate expires in 6.5 days: www.example.test:443"
    )
    body = parsed.get_body(preferencelist=("plain", "html"))
    assert body is not None
    text = body.get_content()
    assert "Delivery-Id: 7" in text
    assert "Endpoint: www.example.test:443" in text


def test_apprise_json_carries_the_delivery_id_and_idempotency_key_headers() -> None:
    """apprise's json:// posts the alert with the delivery id and Idempotency-Key headers."""
    with http_receiver() as receiver:
        channel = AppriseChannel(receiver.url("json"), timeout_s=20)
        asyncio.run(channel.send(_message(delivery_id=41)))
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.headers[DELIVERY_ID_HEADER.lower()] == "41"
    assert request.headers[IDEMPOTENCY_KEY_HEADER.lower()] == "certvigil-test-key-41"
    document = request.json()
    assert document["title"].startswith("[certvigil] CRITICAL")
    assert "Delivery-Id: 41" in document["message"]


def test_apprise_failure_becomes_a_delivery_error() -> None:
    """A receiver answering 500 makes the apprise channel raise a retryable error."""
    with http_receiver(statuses=[500]) as receiver:
        channel = AppriseChannel(receiver.url("json"), timeout_s=20)
        with pytest.raises(DeliveryError) as info:
            asyncio.run(channel.send(_message()))
    assert not info.value.is_permanent
    assert info.value.channel == f"json://127.0.0.1:{receiver.port}/…"


def test_apprise_refuses_an_unknown_scheme_permanently() -> None:
    """A URL apprise does not know fails permanently, naming the scheme, not the secret."""
    channel = AppriseChannel("nosuchservice://token-secret@host/x")
    with pytest.raises(DeliveryError) as info:
        asyncio.run(channel.send(_message()))
    assert info.value.is_permanent
    assert "token-secret" not in str(info.value)


def test_webhook_posts_the_alert_document_with_the_header() -> None:
    """A webhook+http URL posts certvigil's JSON document with the delivery id header."""
    with http_receiver() as receiver:
        channel = channel_for(receiver.url("webhook+http"))
        assert isinstance(channel, WebhookChannel)
        asyncio.run(channel.send(_message(delivery_id=5, event=EventAction.RESOLVE)))
    request = receiver.requests[0]
    assert request.path == "/hook"
    assert request.headers[DELIVERY_ID_HEADER.lower()] == "5"
    assert request.headers[IDEMPOTENCY_KEY_HEADER.lower()] == "certvigil-test-key-5"
    assert request.json()["idempotency_key"] == "certvigil-test-key-5"
    document = request.json()
    assert document["delivery_id"] == 5
    assert document["event"] == "resolve"
    assert document["kind"] == "expiry_threshold"
    assert document["endpoint"] == "www.example.test:443"
    assert document["occurred_at"] == NOW.isoformat()


@pytest.mark.parametrize(("status", "is_permanent"), [(500, False), (429, False), (404, True)])
def test_webhook_classifies_failures(status: int, is_permanent: bool) -> None:
    """5xx and 429 answers are retryable; other 4xx answers are permanent."""
    with http_receiver(statuses=[status]) as receiver:
        with pytest.raises(DeliveryError) as info:
            asyncio.run(WebhookChannel(receiver.url("webhook+http")).send(_message()))
    assert info.value.is_permanent is is_permanent
    assert f"HTTP {status}" in info.value.reason


def test_webhook_connection_refused_is_retryable() -> None:
    """A webhook whose receiver is down fails with a retryable error."""
    with http_receiver() as receiver:
        url = receiver.url("webhook+http")
    with pytest.raises(DeliveryError) as info:
        asyncio.run(WebhookChannel(url, timeout_s=5).send(_message()))
    assert not info.value.is_permanent


def test_resolved_subject_says_resolved_once() -> None:
    """A resolve event's subject reads RESOLVED, without doubling the title's own prefix."""
    resolve = _message(event=EventAction.RESOLVE)
    titled = OutgoingMessage(
        **{f: getattr(resolve, f) for f in OutgoingMessage.__slots__ if f != "title"},
        title="Resolved: untrusted on www.example.test:443",
    )
    assert resolve.subject.startswith("[certvigil] RESOLVED: Certificate expires")
    assert titled.subject == "[certvigil] RESOLVED: untrusted on www.example.test:443"


def test_subject_and_body_show_hostile_text_as_escapes() -> None:
    """A certificate name with escapes and bidi controls reaches no reader raw."""
    hostile = "evil\x1b]8;;https://evil.test\x07\u202e\n"
    plain = _message()
    message = OutgoingMessage(
        **{
            f: getattr(plain, f)
            for f in OutgoingMessage.__slots__
            if f not in {"title", "message", "endpoint"}
        },
        title=f"Certificate expires: {hostile}",
        message=f"{hostile} expires.",
        endpoint=f"{hostile}:443",
    )
    assert message.subject == (
        "[certvigil] CRITICAL: Certificate expires: evil\\x1b]8;;https://evil.test\\x07\\u202e\\n"
    )
    body = message.body.split("\n")
    assert body[0] == "evil\\x1b]8;;https://evil.test\\x07\\u202e\\n expires."
    assert "Endpoint: evil\\x1b]8;;https://evil.test\\x07\\u202e\\n:443" in body
    assert all(line.isprintable() for line in body)


def test_apprise_html_mail_shows_a_hostile_name_as_text() -> None:
    """A certificate name holding HTML reaches an HTML mail escaped, not as a link."""
    plain = _message()
    hostile = OutgoingMessage(
        **{f: getattr(plain, f) for f in OutgoingMessage.__slots__ if f != "message"},
        message='<a href="https://evil.test">renew here</a> expires.',
    )
    with smtp_server() as (port, mails):
        url = (
            f"mailto://127.0.0.1:{port}?mode=insecure&format=html"
            "&from=certvigil@example.test&to=ops@example.test"
        )
        asyncio.run(AppriseChannel(url, timeout_s=20).send(hostile))
    parsed = email.message_from_bytes(mails[0].content, policy=default_policy)
    html = parsed.get_body(preferencelist=("html",))
    assert html is not None
    text = html.get_content()
    assert '<a href="https://evil.test">' not in text
    assert "&lt;a&nbsp;href=&quot;https://evil.test" in text

"""The outbox worker against real receivers on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import email
import logging
import random
from datetime import timedelta
from email.policy import default as default_policy

import pytest

from certvigil.alerts.channels import DELIVERY_ID_HEADER, IDEMPOTENCY_KEY_HEADER
from certvigil.alerts.delivery import (
    DeliveryStats,
    RetryPolicy,
    channels_for_routes,
    deliver_due,
    deliver_forever,
    release_claims,
)
from certvigil.alerts.engine import AlertEngine
from certvigil.alerts.routing import AlertRoute
from certvigil.analysis.model import Severity
from certvigil.store import DeliveryStatus, Store
from certvigil.store.outbox import list_deliveries
from certvigil.targets.target import Target

from .factories import T0, leaf, report
from .receivers import http_receiver, smtp_server

NO_JITTER = RetryPolicy(first_delay_s=30, multiplier=2, max_delay_s=3600, jitter=0, lease_s=60)


def _deliveries(store: Store):
    with store.read() as connection:
        return list_deliveries(connection)


def _open_untrusted(store: Store, routes: tuple[AlertRoute, ...], name: str = "d") -> None:
    engine = AlertEngine(store, routes=routes)
    cert = leaf(name, not_before=T0, lifetime=timedelta(days=365))
    engine.record_and_process(report(cert, T0, trusted=False), T0)


def _run(store: Store, routes, now, **kwargs) -> DeliveryStats:
    channels = channels_for_routes(routes, timeout_s=10)
    return asyncio.run(deliver_due(store, channels, now, **kwargs))


def test_webhook_receives_the_alert_once(store: Store) -> None:
    """An opened alert reaches a real webhook receiver once, with its delivery id header."""
    with http_receiver() as receiver:
        route = AlertRoute(name="hook", url=receiver.url("webhook+http"))
        _open_untrusted(store, (route,))
        first = _run(store, (route,), T0)
        again = _run(store, (route,), T0 + timedelta(hours=1))
    assert (first.claimed, first.sent, again.claimed) == (1, 1, 0)
    (delivery,) = _deliveries(store)
    assert delivery.status is DeliveryStatus.SENT and delivery.sent_at_utc == T0
    (request,) = receiver.requests
    assert request.headers[DELIVERY_ID_HEADER.lower()] == str(delivery.id)
    document = request.json()
    assert (document["kind"], document["event"], document["severity"]) == (
        "untrusted",
        "open",
        "critical",
    )


def test_failing_receiver_is_retried_with_back_off_and_delivered_once(store: Store) -> None:
    """A receiver answering 500 three times then 200 gets the alert once, after back-off."""
    with http_receiver(statuses=[500, 500, 500]) as receiver:
        route = AlertRoute(name="flaky", url=receiver.url("json"))
        _open_untrusted(store, (route,))
        now = T0
        due_times = []
        for _ in range(6):
            _run(store, (route,), now, retry=NO_JITTER)
            (delivery,) = _deliveries(store)
            if delivery.status is DeliveryStatus.SENT:
                break
            due_times.append(delivery.next_attempt_at_utc)
            # Not due yet one second early: nothing is claimed.
            early = _run(store, (route,), delivery.next_attempt_at_utc - timedelta(seconds=1))
            assert early.claimed == 0
            now = delivery.next_attempt_at_utc
    gaps = [(b - a).total_seconds() for a, b in zip([T0, *due_times], due_times, strict=False)]
    assert gaps == [30.0, 60.0, 120.0]
    (delivery,) = _deliveries(store)
    assert delivery.status is DeliveryStatus.SENT and delivery.attempts == 4
    assert [r.headers["x-answered"] for r in receiver.requests] == ["500", "500", "500", "200"]
    assert len(receiver.accepted()) == 1


def test_jitter_spreads_retries_within_bounds() -> None:
    """With jitter, the first retry lands within ±20 % of the base delay, from a seeded source."""
    policy = RetryPolicy(first_delay_s=100, jitter=0.2)
    delays = [policy.delay_s(1, random.Random(seed)) for seed in range(50)]
    assert all(80 <= d <= 120 for d in delays)
    assert len(set(delays)) > 40
    assert policy.delay_s(30, random.Random(1)) <= policy.max_delay_s * 1.2


def test_gives_up_after_max_attempts_and_keeps_the_error(store: Store) -> None:
    """A receiver that always fails is given up on after max_attempts, the error kept."""
    policy = RetryPolicy(first_delay_s=1, max_delay_s=1, jitter=0, max_attempts=3)
    with http_receiver(statuses=[503] * 10) as receiver:
        route = AlertRoute(name="down", url=receiver.url("webhook+http"))
        _open_untrusted(store, (route,))
        stats = [
            _run(store, (route,), T0 + timedelta(seconds=10 * n), retry=policy) for n in range(5)
        ]
    assert [(s.retried, s.failed) for s in stats] == [(1, 0), (1, 0), (0, 1), (0, 0), (0, 0)]
    (delivery,) = _deliveries(store)
    assert delivery.status is DeliveryStatus.FAILED
    assert "HTTP 503" in (delivery.last_error or "") and "giving up" in (delivery.last_error or "")
    assert len(receiver.requests) == 3


def test_permanent_error_fails_at_once(store: Store) -> None:
    """A 404 answer is not retried."""
    with http_receiver(statuses=[404]) as receiver:
        route = AlertRoute(name="gone", url=receiver.url("webhook+http"))
        _open_untrusted(store, (route,))
        stats = _run(store, (route,), T0)
    assert (stats.failed, stats.retried) == (1, 0)
    assert _deliveries(store)[0].status is DeliveryStatus.FAILED


def test_unconfigured_route_is_recorded_failed_not_dropped(store: Store) -> None:
    """A delivery whose route left the configuration is kept, failed, with the reason."""
    old = AlertRoute(name="old", url="webhook+http://127.0.0.1:9/old")
    _open_untrusted(store, (old,))
    stats = _run(store, (), T0)
    assert stats.failed == 1
    (delivery,) = _deliveries(store)
    assert delivery.status is DeliveryStatus.FAILED
    assert "route not configured" in (delivery.last_error or "")


def test_claim_abandoned_by_a_crashed_worker_is_sent_once_after_the_lease(store: Store) -> None:
    """A claim left by a dead worker is sent once by a new worker when its lease lapses."""
    with http_receiver() as receiver:
        route = AlertRoute(name="hook", url=receiver.url("webhook+http"))
        _open_untrusted(store, (route,))
        # A worker claims and dies before sending.
        (claimed,) = store.claim_due_deliveries(now=T0, lease_s=60)
        # A new worker over the same database: not yet, the lease holds...
        during = _run(store, (route,), T0 + timedelta(seconds=59), retry=NO_JITTER)
        # ...then the lease lapses and it is sent, once.
        after = _run(store, (route,), T0 + timedelta(seconds=61), retry=NO_JITTER)
        later = _run(store, (route,), T0 + timedelta(hours=1), retry=NO_JITTER)
    assert (during.claimed, after.sent, later.claimed) == (0, 1, 0)
    assert [r.headers[DELIVERY_ID_HEADER.lower()] for r in receiver.requests] == [str(claimed.id)]


def test_release_claims_lets_a_single_worker_resend_at_once(store: Store) -> None:
    """At start-up, a single worker releases a dead predecessor's claims and sends them."""
    with http_receiver() as receiver:
        route = AlertRoute(name="hook", url=receiver.url("webhook+http"))
        _open_untrusted(store, (route,))
        store.claim_due_deliveries(now=T0, lease_s=600)
        assert release_claims(store, now=T0 + timedelta(seconds=1)) == 1
        stats = _run(store, (route,), T0 + timedelta(seconds=1))
    assert stats.sent == 1 and len(receiver.requests) == 1


def test_email_alert_reaches_a_real_smtp_server(store: Store) -> None:
    """The engine's alert reaches a local SMTP server through an apprise mailto:// route."""
    with smtp_server() as (port, mails):
        route = AlertRoute(
            name="mail",
            url=f"mailto://127.0.0.1:{port}?mode=insecure"
            "&from=certvigil@example.test&to=oncall@example.test",
            min_severity=Severity.WARNING,
        )
        _open_untrusted(store, (route,), name="mail")
        stats = _run(store, (route,), T0)
    assert stats.sent == 1
    (mail,) = mails
    parsed = email.message_from_bytes(mail.content, policy=default_policy)
    assert parsed["Subject"] == "[certvigil] CRITICAL: Untrusted certificate: www.example.test:443"
    body = parsed.get_body(preferencelist=("plain", "html"))
    assert body is not None
    (delivery,) = _deliveries(store)
    assert f"Delivery-Id: {delivery.id}" in body.get_content()
    assert parsed["Idempotency-Key"] == delivery.idempotency_key
    assert f"Idempotency-Key: {delivery.idempotency_key}" in body.get_content()


def test_resolution_is_delivered_after_the_opening(store: Store) -> None:
    """Recovery sends a 'resolve' message after the 'open' one, each once."""
    with http_receiver() as receiver:
        route = AlertRoute(name="hook", url=receiver.url("webhook+http"))
        engine = AlertEngine(store, routes=(route,))
        cert = leaf("res", not_before=T0, lifetime=timedelta(days=365))
        engine.record_and_process(report(cert, T0, trusted=False), T0)
        _run(store, (route,), T0)
        t1 = T0 + timedelta(hours=1)
        engine.record_and_process(report(cert, t1), t1)
        _run(store, (route,), t1)
        _run(store, (route,), t1 + timedelta(hours=1))
    events = [r.json()["event"] for r in receiver.requests]
    assert events == ["open", "resolve"]
    assert (
        receiver.requests[1].json()["message"]
        == "The chain served by www.example.test:443 verifies again."
    )


def test_two_workers_on_one_outbox_send_each_delivery_once(
    store: Store, open_another_store
) -> None:
    """Two workers draining the same outbox at once send every delivery exactly once."""
    with http_receiver() as receiver:
        route = AlertRoute(name="hook", url=receiver.url("webhook+http"))
        engine = AlertEngine(store, routes=(route,))
        for n in range(12):
            target = Target(host=f"h{n}.example.test", port=443)
            cert = leaf(f"w{n}", not_before=T0, lifetime=timedelta(days=365))
            engine.record_and_process(report(cert, T0, trusted=False, target=target), T0)
        other = open_another_store()
        channels = channels_for_routes((route,), timeout_s=10)

        async def both() -> list[DeliveryStats]:
            return list(
                await asyncio.gather(
                    deliver_due(store, channels, T0, limit=8, concurrency=2),
                    deliver_due(other, channels, T0, limit=8, concurrency=2),
                )
            )

        stats = asyncio.run(both())
        stats.append(_run(store, (route,), T0))
    ids = [r.headers[DELIVERY_ID_HEADER.lower()] for r in receiver.requests]
    assert len(ids) == 12 and len(set(ids)) == 12
    assert sum(s.sent for s in stats) == 12
    assert all(d.status is DeliveryStatus.SENT for d in _deliveries(store))


def test_deliver_forever_sends_until_stopped(store: Store) -> None:
    """The worker loop sends what is queued, then stops when told, with its totals."""
    with http_receiver() as receiver:
        route = AlertRoute(name="hook", url=receiver.url("webhook+http"))
        _open_untrusted(store, (route,))
        channels = channels_for_routes((route,), timeout_s=10)

        async def run() -> DeliveryStats:
            stop = asyncio.Event()
            worker = asyncio.create_task(
                deliver_forever(store, channels, stop, poll_interval_s=0.05, clock=lambda: T0)
            )
            for _ in range(200):
                if receiver.requests:
                    break
                await asyncio.sleep(0.02)
            stop.set()
            return await asyncio.wait_for(worker, 10)

        total = asyncio.run(run())
    assert (total.claimed, total.sent) == (1, 1)
    assert len(receiver.requests) == 1


SECRET_PASSWORD = "Pa55-w0rd-xyz"
SECRET_TOKEN = "tok3n-SECRET-abcdef"


def test_each_failed_attempt_is_logged_with_masked_channel_alert_error_and_next_try(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing receiver's attempt logs a warning naming channel, alert, error and next try."""
    caplog.set_level(logging.INFO, logger="certvigil.delivery")
    with http_receiver(statuses=[500]) as receiver:
        url = f"webhook+http://ops:{SECRET_PASSWORD}@127.0.0.1:{receiver.port}/h/{SECRET_TOKEN}"
        route = AlertRoute(name="hook", url=url)
        _open_untrusted(store, (route,))
        failed = _run(store, (route,), T0, retry=NO_JITTER)
        (pending,) = _deliveries(store)
        sent = _run(store, (route,), pending.next_attempt_at_utc, retry=NO_JITTER)
    assert (failed.retried, sent.sent) == (1, 1)
    (warning,) = [r for r in caplog.records if r.getMessage() == "delivery failed"]
    assert warning.levelno == logging.WARNING
    fields = vars(warning)
    assert fields["alert"] == pending.alert_id and fields["delivery"] == pending.id
    assert fields["route"] == "hook" and fields["attempt"] == 1
    assert fields["error"] == "HTTP 500 Internal Server Error"
    assert fields["next_attempt_at"] == pending.next_attempt_at_utc.isoformat()
    assert fields["channel"] == f"webhook+http://127.0.0.1:{receiver.port}/…"
    (success,) = [r for r in caplog.records if r.getMessage() == "delivery sent"]
    assert vars(success)["attempt"] == 2 and vars(success)["delivery"] == pending.id
    logged = " ".join(str(vars(r)) for r in caplog.records)
    assert SECRET_PASSWORD not in logged and SECRET_TOKEN not in logged


def test_every_attempt_carries_the_same_idempotency_key_in_header_and_body(
    store: Store,
) -> None:
    """A retried webhook delivery sends one key, as ``Idempotency-Key`` and in the JSON body."""
    with http_receiver(statuses=[503]) as receiver:
        route = AlertRoute(name="hook", url=receiver.url("webhook+http"))
        _open_untrusted(store, (route,))
        _run(store, (route,), T0, retry=NO_JITTER)
        (pending,) = _deliveries(store)
        _run(store, (route,), pending.next_attempt_at_utc, retry=NO_JITTER)
    (delivery,) = _deliveries(store)
    assert delivery.status is DeliveryStatus.SENT
    keys = {r.headers[IDEMPOTENCY_KEY_HEADER.lower()] for r in receiver.requests}
    bodies = {r.json()["idempotency_key"] for r in receiver.requests}
    assert len(receiver.requests) == 2
    assert keys == bodies == {delivery.idempotency_key}

"""The outbox worker: claim due deliveries, send each through its channel, record the outcome.

The protocol, and what it guarantees across a crash (kill -9 at any instant):

1. **Claim** (one transaction): due rows become ``sending`` with a lease
   (``lease_until_utc``) and one more attempt. A crash before this commit leaves the
   rows ``pending``: nothing lost.
2. **Send** through the channel, bounded by the channel's time-out (shorter than the
   lease). A crash here leaves the row ``sending``; when the lease lapses (or at once,
   when a single worker calls :func:`release_claims` at start-up) it is claimed again
   and sent: nothing lost.
3. **Mark** (one transaction per delivery, right after its send): ``sent``, or
   ``pending`` again with an exponential back-off and jitter, or ``failed`` for good
   after a permanent error, ``max_attempts`` attempts or ``max_age_s`` seconds. A
   failed delivery stays in the table with its last error: never silently dropped.

The one window that can duplicate is between the receiver taking the message in step 2
and the commit of step 3 (a few milliseconds of local database work): a crash there
sends the message again after restart. No protocol can close it without the receiver's
help, because "sent" and "recorded" cannot be one atomic act across two systems. To
let receivers close it, every message carries its delivery id: in the body, and in the
``X-Certvigil-Delivery-Id`` header for webhooks. Outside that window a delivery is sent
exactly once.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from certvigil.alerts.channels import Channel, OutgoingMessage, channel_for
from certvigil.alerts.engine import action_of_event
from certvigil.alerts.routing import AlertRoute
from certvigil.alerts.rules import EventAction
from certvigil.errors import DeliveryError
from certvigil.store import AlertRecord, DeliveryRecord, DeliveryStatus, Store
from certvigil.store.models import DELIVERIES


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """When to try a failed delivery again, and when to give up.

    Attributes:
        first_delay_s: Delay after the first failed attempt.
        multiplier: Each further failure multiplies the delay by this.
        max_delay_s: The delay never exceeds this.
        jitter: Each delay is scaled by a random factor in ``[1 - jitter, 1 + jitter]``,
            so that many deliveries failing together do not retry together.
        max_attempts: Give up after this many attempts.
        max_age_s: Give up on a delivery queued longer ago than this.
        lease_s: How long a claim lasts; must exceed the channel time-out.
    """

    first_delay_s: float = 30.0
    multiplier: float = 2.0
    max_delay_s: float = 3600.0
    jitter: float = 0.2
    max_attempts: int = 12
    max_age_s: float = 2 * 86400.0
    lease_s: float = 300.0

    def __post_init__(self) -> None:
        if self.first_delay_s < 0 or self.max_delay_s < self.first_delay_s:
            raise ValueError("delays must satisfy 0 <= first_delay_s <= max_delay_s")
        if self.multiplier < 1:
            raise ValueError(f"multiplier must be at least 1, not {self.multiplier}")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"jitter must be in [0, 1), not {self.jitter}")
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, not {self.max_attempts}")
        if self.lease_s <= 0:
            raise ValueError(f"lease_s must be positive, not {self.lease_s}")

    def delay_s(self, attempts: int, rng: random.Random) -> float:
        """The back-off after ``attempts`` failed attempts (1 for the first failure)."""
        base = self.first_delay_s * self.multiplier ** max(attempts - 1, 0)
        capped = min(base, self.max_delay_s)
        return capped * rng.uniform(1 - self.jitter, 1 + self.jitter)


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryStats:
    """What one pass of the worker did.

    Attributes:
        claimed: Deliveries claimed.
        sent: Delivered and recorded sent.
        retried: Failed and scheduled again.
        failed: Given up on (recorded ``failed`` with the reason).
    """

    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0


def channels_for_routes(
    routes: Iterable[AlertRoute], *, timeout_s: float = 30.0
) -> dict[str, Channel]:
    """One channel per route key, as :func:`deliver_due` looks them up."""
    return {route.key: channel_for(route.url, timeout_s=timeout_s) for route in routes}


def outgoing_message(delivery: DeliveryRecord, alert: AlertRecord) -> OutgoingMessage:
    """The message for one delivery of one alert event.

    Raises:
        ValueError: The delivery's event is not one the engine queues.
    """
    action = action_of_event(delivery.event)
    details = alert.details
    if action is EventAction.RESOLVE:
        text = str(details.get("resolution") or "The condition is gone.")
        occurred = alert.resolved_at_utc or alert.opened_at_utc
    else:
        text = str(details.get("message") or alert.summary)
        occurred = alert.opened_at_utc
    endpoint = str(alert.target) if alert.target is not None else details.get("endpoint")
    return OutgoingMessage(
        delivery_id=delivery.id,
        alert_id=alert.id,
        event=action,
        kind=alert.kind,
        severity=alert.severity,
        state=alert.state.value,
        dedup_key=alert.dedup_key,
        endpoint=str(endpoint) if endpoint is not None else None,
        certificate_sha256=alert.certificate_sha256,
        title=alert.summary,
        message=text,
        opened_at_utc=alert.opened_at_utc,
        occurred_at_utc=occurred,
    )


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def deliver_due(
    store: Store,
    channels: Mapping[str, Channel],
    now: datetime,
    *,
    retry: RetryPolicy | None = None,
    limit: int = 50,
    concurrency: int = 8,
    rng: random.Random | None = None,
    clock: Callable[[], datetime] | None = None,
) -> DeliveryStats:
    """One pass of the outbox: claim what is due at ``now``, send it, record the outcomes.

    Args:
        store: The inventory holding the outbox.
        channels: Channel per route key (see :func:`channels_for_routes`). A delivery
            whose route is not here is recorded ``failed`` ("route not configured").
        now: The claim time (aware UTC): what is due, and the lease start.
        retry: Back-off and give-up rules.
        limit: Claim at most this many.
        concurrency: Send at most this many at once.
        rng: Random source for the jitter (tests pass a seeded one).
        clock: Time of the outcome records; ``now`` is used when ``None``.

    Returns:
        What the pass did.
    """
    policy = retry or RetryPolicy()
    random_source = rng or random.Random()
    tell_time = clock or (lambda: now)
    claimed = await asyncio.to_thread(
        store.claim_due_deliveries, now=now, limit=limit, lease_s=policy.lease_s
    )
    if not claimed:
        return DeliveryStats()
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(delivery: DeliveryRecord) -> DeliveryStatus:
        async with gate:
            return await _deliver_one(store, channels, delivery, policy, random_source, tell_time)

    outcomes = await asyncio.gather(*(one(d) for d in claimed))
    return DeliveryStats(
        claimed=len(claimed),
        sent=sum(o is DeliveryStatus.SENT for o in outcomes),
        retried=sum(o is DeliveryStatus.PENDING for o in outcomes),
        failed=sum(o is DeliveryStatus.FAILED for o in outcomes),
    )


async def _deliver_one(
    store: Store,
    channels: Mapping[str, Channel],
    delivery: DeliveryRecord,
    policy: RetryPolicy,
    rng: random.Random,
    clock: Callable[[], datetime],
) -> DeliveryStatus:
    channel = channels.get(delivery.route)
    alert = await asyncio.to_thread(store.get_alert, delivery.alert_id)
    try:
        if channel is None:
            raise DeliveryError(delivery.route, "route not configured any more", is_permanent=True)
        if alert is None:
            raise DeliveryError(delivery.route, "the alert no longer exists", is_permanent=True)
        try:
            message = outgoing_message(delivery, alert)
        except ValueError as exc:
            raise DeliveryError(delivery.route, str(exc), is_permanent=True) from exc
        await channel.send(message)
    except DeliveryError as exc:
        at = clock()
        age_s = (at - delivery.created_at_utc).total_seconds()
        give_up = (
            exc.is_permanent
            or delivery.attempts >= policy.max_attempts
            or age_s >= policy.max_age_s
        )
        reason = f"attempt {delivery.attempts}: {exc}"
        if give_up and not exc.is_permanent:
            reason += " (giving up)"
        next_at = at + timedelta(seconds=policy.delay_s(delivery.attempts, rng))
        await asyncio.to_thread(
            store.mark_failed, delivery.id, next_attempt_at=next_at, error=reason, give_up=give_up
        )
        return DeliveryStatus.FAILED if give_up else DeliveryStatus.PENDING
    # Mark at once, per delivery: this commit closes the only duplicate window.
    await asyncio.to_thread(store.mark_delivered, delivery.id, now=clock())
    return DeliveryStatus.SENT


def release_claims(store: Store, *, now: datetime) -> int:
    """Makes every ``sending`` delivery due again at once; for a single worker's start-up.

    When only one worker process exists, a row still ``sending`` when it starts was
    claimed by a predecessor that died, and waiting for its lease to lapse only delays
    the alert. Never call this while another worker may be sending (several workers on
    PostgreSQL): their claims would be sent twice. Leases lapse by themselves anyway.

    Returns:
        How many deliveries were released.
    """
    with store.write() as connection:
        result = connection.execute(
            update(DELIVERIES)
            .where(DELIVERIES.c.status == DeliveryStatus.SENDING.value)
            .values(
                status=DeliveryStatus.PENDING.value,
                lease_until_utc=None,
                next_attempt_at_utc=now,
            )
        )
        return result.rowcount


async def deliver_forever(
    store: Store,
    channels: Mapping[str, Channel],
    stop: asyncio.Event,
    *,
    poll_interval_s: float = 5.0,
    retry: RetryPolicy | None = None,
    clock: Callable[[], datetime] = _utc_now,
) -> DeliveryStats:
    """Run :func:`deliver_due` until ``stop`` is set; a full batch is followed at once.

    Returns:
        The totals over every pass.
    """
    total = DeliveryStats()
    limit = 50
    while not stop.is_set():
        stats = await deliver_due(store, channels, clock(), retry=retry, limit=limit, clock=clock)
        total = DeliveryStats(
            claimed=total.claimed + stats.claimed,
            sent=total.sent + stats.sent,
            retried=total.retried + stats.retried,
            failed=total.failed + stats.failed,
        )
        if stats.claimed >= limit:
            continue
        try:
            await asyncio.wait_for(stop.wait(), timeout=poll_interval_s)
        except TimeoutError:
            pass
    return total

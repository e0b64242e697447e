"""Alerts and the outbox: opened once per condition, queued once, claimed by one sender."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

from certvigil.analysis.model import Severity
from certvigil.store import AlertState, DeliveryStatus, Store
from certvigil.targets.target import Target
from tests.store.factories import NOW, facts, ok_report

MINUTE = timedelta(minutes=1)


def _open(store: Store, key: str = "expiry:30d:abc", **extra: object) -> tuple[int, bool]:
    alert, created = store.open_alert_if_absent(
        dedup_key=key,
        kind="expiry",
        severity=Severity.WARNING,
        summary="expires in 29 days",
        now=NOW,
        **extra,  # type: ignore[arg-type]
    )
    return alert.id, created


def test_open_alert_once_per_key(store: Store) -> None:
    """Opening the same condition twice returns the first alert and creates nothing."""
    first, created = _open(store, routes=["ops"])
    again, created_again = _open(store, routes=["ops"])
    assert created and not created_again
    assert again == first
    assert len(store.list_alerts()) == 1
    assert len(store.list_deliveries(alert_id=first)) == 1


def test_alert_links_endpoint_certificate_and_observation(store: Store) -> None:
    """An alert refers to its endpoint, certificate and observation and reads them back."""
    target = Target(host="www.example.test", port=443)
    leaf = facts("www", not_after_utc=NOW + timedelta(days=20))
    observation_id = store.record_report(ok_report(target, (leaf,)))
    endpoint = store.find_endpoint(target)
    assert endpoint is not None
    alert_id, _ = _open(
        store,
        endpoint_id=endpoint.id,
        certificate_sha256=leaf.sha256_hex,
        observation_id=observation_id,
        details={"days_remaining": 20},
    )
    alert = store.get_alert(alert_id)
    assert alert is not None
    assert alert.target == target
    assert alert.certificate_sha256 == leaf.sha256_hex
    assert alert.observation_id == observation_id
    assert alert.details == {"days_remaining": 20}
    assert store.list_alerts(certificate_sha256=leaf.sha256_hex)[0].id == alert_id


def test_lifecycle_and_reopening(store: Store) -> None:
    """Acknowledge then resolve; the same condition later opens a new alert."""
    alert_id, _ = _open(store)
    assert store.acknowledge_alert(alert_id, by="alice", now=NOW + MINUTE)
    assert not store.acknowledge_alert(alert_id, by="bob", now=NOW + 2 * MINUTE)
    again, created = _open(store)
    assert again == alert_id and not created
    assert store.resolve_alert(alert_id, now=NOW + 3 * MINUTE, routes=["ops", "chat"])
    assert not store.resolve_alert(alert_id, now=NOW + 4 * MINUTE, routes=["ops"])
    resolved = store.get_alert(alert_id)
    assert resolved is not None
    assert resolved.state is AlertState.RESOLVED
    assert resolved.acknowledged_by == "alice"
    assert resolved.resolved_at_utc == NOW + 3 * MINUTE
    events = sorted((d.event, d.route) for d in store.list_deliveries(alert_id=alert_id))
    assert events == [("resolved", "chat"), ("resolved", "ops")]
    reopened, created = _open(store)
    assert created and reopened != alert_id


def test_enqueue_is_idempotent(store: Store) -> None:
    """The same (alert, event, route) is queued once however often it is asked."""
    alert_id, _ = _open(store)
    results = [
        store.enqueue_delivery(alert_id=alert_id, event="opened", route="ops", now=NOW)
        for _ in range(3)
    ]
    assert results == [True, False, False]
    assert store.enqueue_delivery(alert_id=alert_id, event="opened", route="chat", now=NOW)


def test_claim_deliver_and_retry(store: Store) -> None:
    """A due delivery is claimed once; failure makes it due later; success ends it."""
    alert_id, _ = _open(store, routes=["ops"])
    (claimed,) = store.claim_due_deliveries(now=NOW)
    assert claimed.status is DeliveryStatus.SENDING and claimed.attempts == 1
    assert store.claim_due_deliveries(now=NOW) == ()
    assert store.mark_failed(claimed.id, next_attempt_at=NOW + 5 * MINUTE, error="timeout")
    assert store.claim_due_deliveries(now=NOW + MINUTE) == ()
    (retry,) = store.claim_due_deliveries(now=NOW + 5 * MINUTE)
    assert retry.attempts == 2 and retry.last_error == "timeout"
    assert store.mark_delivered(retry.id, now=NOW + 6 * MINUTE)
    assert not store.mark_delivered(retry.id, now=NOW + 7 * MINUTE)
    (done,) = store.list_deliveries(alert_id=alert_id)
    assert done.status is DeliveryStatus.SENT and done.sent_at_utc == NOW + 6 * MINUTE
    assert store.claim_due_deliveries(now=NOW + timedelta(days=1)) == ()


def test_give_up(store: Store) -> None:
    """A delivery given up on is never claimed again."""
    _open(store, routes=["ops"])
    (claimed,) = store.claim_due_deliveries(now=NOW)
    assert store.mark_failed(claimed.id, next_attempt_at=NOW, error="bad url", give_up=True)
    assert store.claim_due_deliveries(now=NOW + timedelta(days=1)) == ()
    assert store.list_deliveries(statuses=[DeliveryStatus.FAILED])[0].id == claimed.id


def test_lapsed_lease_is_claimed_again(store: Store) -> None:
    """A claim whose sender died (never marked) becomes due when its lease lapses."""
    _open(store, routes=["ops"])
    (claimed,) = store.claim_due_deliveries(now=NOW, lease_s=60)
    assert store.claim_due_deliveries(now=NOW + timedelta(seconds=59)) == ()
    (again,) = store.claim_due_deliveries(now=NOW + timedelta(seconds=60))
    assert again.id == claimed.id and again.attempts == 2


def test_claim_respects_limit_and_order(store: Store) -> None:
    """Claims take the earliest due first, at most ``limit`` at a time."""
    _open(store, routes=[f"route-{i}" for i in range(5)])
    first = store.claim_due_deliveries(now=NOW, limit=2)
    rest = store.claim_due_deliveries(now=NOW, limit=10)
    assert len(first) == 2 and len(rest) == 3
    assert {d.id for d in first}.isdisjoint(d.id for d in rest)


def test_concurrent_senders_never_share_a_delivery(
    store: Store, open_another_store: Callable[[], Store]
) -> None:
    """Four senders claiming at once from separate stores each get distinct deliveries."""
    _open(store, routes=[f"route-{i}" for i in range(40)])
    senders = [open_another_store() for _ in range(4)]
    claimed: list[list[int]] = [[] for _ in senders]
    barrier = threading.Barrier(len(senders))

    def run(index: int) -> None:
        barrier.wait()
        while True:
            batch = senders[index].claim_due_deliveries(now=NOW, limit=3)
            if not batch:
                return
            claimed[index].extend(d.id for d in batch)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(senders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    every = [d for ids in claimed for d in ids]
    assert len(every) == 40
    assert len(set(every)) == 40


def test_concurrent_openers_create_one_alert(
    store: Store, open_another_store: Callable[[], Store]
) -> None:
    """Several processes opening the same condition at once create exactly one alert."""
    openers = [open_another_store() for _ in range(4)]
    created: list[bool] = []
    barrier = threading.Barrier(len(openers))

    def run(opener: Store) -> None:
        barrier.wait()
        created.append(_open(opener, routes=["ops"])[1])

    threads = [threading.Thread(target=run, args=(o,)) for o in openers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(created) == [False, False, False, True]
    assert len(store.list_alerts()) == 1
    assert len(store.list_deliveries()) == 1


def _dead_pid() -> int:
    """The id of a process that has just exited on this host."""
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(30)
    return child.pid


def test_claims_are_owned_and_only_the_holder_marks_or_releases_them(store: Store) -> None:
    """A second worker neither marks nor releases a live worker's claim; its holder does."""
    from certvigil.store.outbox import new_worker_id, release_claims

    _open(store, routes=["ops"])
    first, second = new_worker_id(), new_worker_id()
    (claimed,) = store.claim_due_deliveries(now=NOW, owner=first)
    assert claimed.claimed_by == str(first)
    with store.write() as connection:
        assert release_claims(connection, now=NOW, owner=second) == 0
    assert store.claim_due_deliveries(now=NOW, owner=second) == ()
    assert not store.mark_delivered(claimed.id, now=NOW, owner=second)
    assert not store.mark_failed(claimed.id, next_attempt_at=NOW, error="x", owner=second)
    assert store.mark_delivered(claimed.id, now=NOW, owner=first)
    (done,) = store.list_deliveries()
    assert done.status is DeliveryStatus.SENT and done.claimed_by is None


def test_claims_of_a_dead_process_on_this_host_are_released_at_once(store: Store) -> None:
    """A claim whose process on this host is gone is released; another host's waits its lease."""
    from certvigil.store.outbox import WorkerId, host_identity, new_worker_id, release_claims

    _open(store, routes=["a", "b"])
    dead = WorkerId(host=host_identity(), pid=_dead_pid(), nonce="0badc0de")
    elsewhere = WorkerId(host="another-host.invalid", pid=1, nonce="12345678")
    (one,) = store.claim_due_deliveries(now=NOW, limit=1, owner=dead)
    (other,) = store.claim_due_deliveries(now=NOW, limit=1, owner=elsewhere)
    with store.write() as connection:
        assert release_claims(connection, now=NOW, owner=new_worker_id()) == 1
    by_id = {d.id: d for d in store.list_deliveries()}
    assert by_id[one.id].status is DeliveryStatus.PENDING
    assert by_id[other.id].status is DeliveryStatus.SENDING


def test_each_delivery_has_its_own_stable_idempotency_key(store: Store) -> None:
    """Every queued delivery gets a distinct key, kept across claims and retries."""
    _open(store, routes=["a", "b"])
    first = {d.id: d.idempotency_key for d in store.claim_due_deliveries(now=NOW)}
    assert len(set(first.values())) == 2 and all(k.startswith("certvigil-") for k in first.values())
    for delivery_id in first:
        store.mark_failed(delivery_id, next_attempt_at=NOW, error="down")
    again = {d.id: d.idempotency_key for d in store.claim_due_deliveries(now=NOW)}
    assert again == first

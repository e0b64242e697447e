"""Retention: old observations go, the latest per endpoint and alerted ones stay."""

from __future__ import annotations

from datetime import timedelta

import pytest

from certvigil.analysis.model import Severity
from certvigil.store import Store
from certvigil.targets.target import Target
from tests.store.factories import NOW, facts, failed_report, ok_report

DAY = timedelta(days=1)


def _history(store: Store, target: Target) -> list[int]:
    endpoint = store.find_endpoint(target)
    assert endpoint is not None
    return [o.id for o in store.endpoint_history(endpoint.id, limit=None)]


def test_prunes_only_old_observations(store: Store) -> None:
    """Observations older than the window are deleted; newer ones are kept."""
    target = Target(host="www.example.test", port=443)
    leaf = facts("www", not_after_utc=NOW + 400 * DAY)
    ids = [store.record_report(ok_report(target, (leaf,), at=NOW + d * DAY)) for d in range(10)]
    deleted = store.prune_observations(now=NOW + 10 * DAY, keep_days=5)
    assert deleted == 5
    assert sorted(_history(store, target)) == ids[5:]


def test_keeps_latest_per_endpoint(store: Store) -> None:
    """An endpoint not seen for longer than the window keeps its latest observation."""
    quiet = Target(host="quiet.example.test", port=443)
    leaf = facts("quiet", not_after_utc=NOW + 400 * DAY)
    store.record_report(ok_report(quiet, (leaf,), at=NOW))
    latest = store.record_report(failed_report(quiet, at=NOW + DAY))
    assert store.prune_observations(now=NOW + 100 * DAY, keep_days=30) == 1
    assert _history(store, quiet) == [latest]
    assert len(store.inventory()) == 1


def test_keeps_observations_of_active_alerts(store: Store) -> None:
    """An observation an open alert refers to survives until the alert is resolved."""
    target = Target(host="www.example.test", port=443)
    leaf = facts("www", not_after_utc=NOW + 400 * DAY)
    alerted = store.record_report(ok_report(target, (leaf,), at=NOW))
    store.record_report(ok_report(target, (leaf,), at=NOW + DAY))
    store.record_report(ok_report(target, (leaf,), at=NOW + 2 * DAY))
    alert, _ = store.open_alert_if_absent(
        dedup_key="k",
        kind="expiry",
        severity=Severity.WARNING,
        summary="s",
        now=NOW,
        observation_id=alerted,
    )
    assert store.prune_observations(now=NOW + 50 * DAY, keep_days=10) == 1
    assert alerted in _history(store, target)
    store.resolve_alert(alert.id, now=NOW + 50 * DAY)
    assert store.prune_observations(now=NOW + 50 * DAY, keep_days=10) == 1
    assert alerted not in _history(store, target)
    resolved = store.get_alert(alert.id)
    assert resolved is not None and resolved.observation_id is None


def test_prunes_in_batches(store: Store) -> None:
    """A prune larger than one batch deletes everything it should."""
    target = Target(host="www.example.test", port=443)
    leaf = facts("www", not_after_utc=NOW + 400 * DAY)
    reports = [ok_report(target, (leaf,), at=NOW + i * timedelta(minutes=1)) for i in range(30)]
    store.record_reports(reports)
    with store.write() as connection:
        from certvigil.store.retention import prune_observations

        deleted = prune_observations(connection, now=NOW + 10 * DAY, keep_days=1, batch_size=7)
    assert deleted == 29


def test_window_must_be_positive(store: Store) -> None:
    """A zero or negative window is refused rather than deleting everything."""
    with pytest.raises(ValueError, match="keep_days must be positive"):
        store.prune_observations(now=NOW, keep_days=0)

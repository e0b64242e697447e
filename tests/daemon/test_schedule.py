"""The schedule: per-target intervals on a monotonic clock, and the jittered wait."""

from __future__ import annotations

import random
from pathlib import Path

from certvigil.config.expand import ScheduledTarget
from certvigil.config.model import TrustSettings
from certvigil.config.units import Threshold
from certvigil.daemon.schedule import Schedule, sleep_until_s
from certvigil.targets.target import Target


def scheduled(host: str, interval_s: float) -> ScheduledTarget:
    return ScheduledTarget(
        target=Target(host=host, port=443),
        interval_s=interval_s,
        timeout_s=5,
        thresholds=(Threshold(days=7),),
        trust=TrustSettings(ca_files=(Path("x.pem"),)),
        origin="targets[0]",
    )


def test_every_endpoint_is_due_at_start_then_after_its_interval() -> None:
    """Each endpoint comes due again one of its own intervals after it was scanned."""
    fast, slow = scheduled("fast.test", 60), scheduled("slow.test", 3600)
    schedule = Schedule([fast, slow], start_s=100.0)
    assert schedule.due(100.0) == (fast, slow)
    schedule.mark_scanned(fast.target, 100.0)
    schedule.mark_scanned(slow.target, 100.0)
    assert schedule.due(159.9) == ()
    assert schedule.due(160.0) == (fast,)
    assert schedule.next_due_s() == 160.0
    schedule.mark_scanned(fast.target, 160.0)
    assert schedule.due(3700.0) == (fast, slow)


def test_wait_runs_to_the_next_due_time_plus_bounded_jitter() -> None:
    """The wait is the time to the next due endpoint plus 0..jitter seconds."""
    rng = random.Random(7)
    waits = [sleep_until_s(160.0, now_s=100.0, jitter_s=30.0, rng=rng) for _ in range(200)]
    assert all(60.0 <= w <= 90.0 for w in waits)
    assert max(waits) - min(waits) > 20  # the jitter spreads the waits
    assert sleep_until_s(50.0, now_s=100.0, jitter_s=0.0, rng=rng) == 0.0


def test_a_reloaded_schedule_keeps_when_known_endpoints_were_scanned() -> None:
    """After a reload, a kept endpoint is due its new interval after its last scan; a new
    one is due at once, and a dropped one is gone."""
    kept, dropped = scheduled("kept.test", 3600), scheduled("dropped.test", 3600)
    old = Schedule([kept, dropped], start_s=100.0)
    old.mark_scanned(kept.target, 100.0)
    old.mark_scanned(dropped.target, 100.0)
    shorter, added = scheduled("kept.test", 600), scheduled("added.test", 3600)
    new = Schedule([shorter, added], start_s=500.0, previous=old)
    assert len(new) == 2
    assert new.due(500.0) == (added,)
    assert new.due(700.0) == (shorter, added)
    assert new.next_due_s() == 500.0

"""Whole days between now and a certificate's expiry: the one count every output shows."""

from __future__ import annotations

from datetime import datetime

_SECONDS_PER_DAY = 86400


def days_remaining(not_after_utc: datetime, *, now: datetime) -> int:
    """Whole days from ``now`` until ``not_after_utc``, truncated toward zero.

    Findings, the table, CSV and JSON all use this, so "expired 3 days ago" sits
    next to -3 and "expires in 5 days" next to 5. Truncation toward zero means the
    first day either side of expiry counts 0 ("expires in 23 hours", "expired
    today"); the verdict and the ``expired`` finding tell those apart.

    Args:
        not_after_utc: Expiry (aware).
        now: The evaluation time (aware).

    Returns:
        ``trunc((not_after_utc - now) / 1 day)``: 4 for 4 days 23 hours left, -3 for
        expired 3 days 23 hours ago.
    """
    return int((not_after_utc - now).total_seconds() / _SECONDS_PER_DAY)

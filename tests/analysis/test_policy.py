"""The analysis policy: thresholds, severities and validity limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certvigil.analysis.model import Severity
from certvigil.analysis.policy import AnalysisPolicy
from certvigil.analysis.thresholds import ExpiryThreshold, parse_threshold, thresholds_from_days

YEAR = timedelta(days=365)


def test_days_thresholds_are_unique_and_critical_within_the_limit() -> None:
    """``--threshold`` days given in any order become one threshold each, 7 and less
    critical."""
    made = thresholds_from_days((7, 30, 7, 1))
    assert [t.days for t in made] == [30, 7, 1]
    assert [t.severity for t in made] == [Severity.WARNING, Severity.CRITICAL, Severity.CRITICAL]


def test_lifetime_threshold_and_skipped_day_threshold() -> None:
    """A share-of-lifetime threshold crosses by lifetime; a days threshold too long for a
    short-lived certificate is skipped when the policy says so, as the alert rules do."""
    policy = AnalysisPolicy(
        expiry_thresholds=(parse_threshold("30d"), parse_threshold("20%")),
        day_threshold_max_fraction=0.25,
    )
    ninety = timedelta(days=90)
    assert policy.expiry_crossed(timedelta(days=25), ninety) is None
    crossed = policy.expiry_crossed(timedelta(days=17), ninety)
    assert crossed == ExpiryThreshold(fraction=0.2, severity=Severity.WARNING)
    assert policy.expiry_crossed(timedelta(days=25), YEAR) == parse_threshold("30d")


@pytest.mark.parametrize(
    ("remaining", "threshold", "severity"),
    [
        (timedelta(days=31), None, None),
        (timedelta(days=30), 30, Severity.WARNING),
        (timedelta(days=7, seconds=1), 14, Severity.WARNING),
        (timedelta(days=7), 7, Severity.CRITICAL),
        (timedelta(hours=1), 1, Severity.CRITICAL),
    ],
)
def test_default_thresholds(
    remaining: timedelta, threshold: int | None, severity: Severity | None
) -> None:
    """30/14 days out are warnings, 7 days and less critical."""
    crossed = AnalysisPolicy().expiry_crossed(remaining, YEAR)
    assert (crossed.days if crossed else None) == threshold
    assert (crossed.severity if crossed else None) is severity


@pytest.mark.parametrize(
    ("options", "rule"),
    [
        ({"expiry_thresholds": ()}, "expiry_thresholds"),
        ({"day_threshold_max_fraction": 0}, "day_threshold_max_fraction"),
        ({"max_validity_days": 0}, "max_validity_days"),
        ({"min_rsa_bits": -1}, "min_rsa_bits"),
    ],
)
def test_bad_policy_refused(options: dict[str, object], rule: str) -> None:
    """Nonsense settings are refused with the rule they break."""
    with pytest.raises(ValueError, match=rule):
        AnalysisPolicy(**options)  # type: ignore[arg-type]


def test_validity_limit_schedule() -> None:
    """The CA/B Forum steps apply by issue date; a fixed limit overrides them."""
    policy = AnalysisPolicy()
    assert policy.validity_limit_days(datetime(2019, 1, 1, tzinfo=UTC)) is None
    assert policy.validity_limit_days(datetime(2020, 9, 1, tzinfo=UTC)) == 398
    assert policy.validity_limit_days(datetime(2026, 3, 15, tzinfo=UTC)) == 200
    assert policy.validity_limit_days(datetime(2027, 6, 1, tzinfo=UTC)) == 100
    assert policy.validity_limit_days(datetime(2030, 1, 1, tzinfo=UTC)) == 47
    fixed = AnalysisPolicy(max_validity_days=825)
    assert fixed.validity_limit_days(datetime(2030, 1, 1, tzinfo=UTC)) == 825

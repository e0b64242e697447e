"""The analysis policy: thresholds, severities and validity limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from certvigil.analysis.model import Severity
from certvigil.analysis.policy import AnalysisPolicy


def test_thresholds_are_sorted_and_unique() -> None:
    """Thresholds given in any order are kept ascending without repeats."""
    assert AnalysisPolicy(thresholds_days=(7, 30, 7, 1)).thresholds_days == (1, 7, 30)


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
    policy = AnalysisPolicy()
    assert policy.threshold_crossed(remaining) == threshold
    assert policy.expiry_severity(remaining) is severity


@pytest.mark.parametrize(
    ("options", "rule"),
    [
        ({"thresholds_days": ()}, "thresholds_days"),
        ({"thresholds_days": (30, 0)}, "positive"),
        ({"critical_within_days": -1}, "critical_within_days"),
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

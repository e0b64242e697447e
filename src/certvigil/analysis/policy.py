"""The knobs of judgement: expiry thresholds, key and signature minimums, validity limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from certvigil.analysis.model import Severity

__all__ = ["CABF_VALIDITY_LIMITS", "AnalysisPolicy"]

CABF_VALIDITY_LIMITS: tuple[tuple[datetime, int], ...] = (
    (datetime(2020, 9, 1, tzinfo=UTC), 398),
    (datetime(2026, 3, 15, tzinfo=UTC), 200),
    (datetime(2027, 3, 15, tzinfo=UTC), 100),
    (datetime(2029, 3, 15, tzinfo=UTC), 47),
)
"""CA/Browser Forum Baseline Requirements: the longest validity (days) of a publicly
trusted TLS leaf issued on or after each date (ballot SC-31 from 2020-09-01, then ballot
SC-081's steps)."""

_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisPolicy:
    """How strictly to judge. The defaults are those of a careful operator.

    Attributes:
        thresholds_days: Expiry alert thresholds in days; a certificate on the path
            that expires within the largest one yields an ``expires_soon`` finding.
        critical_within_days: Expiring within this many days is critical, beyond it
            (up to the largest threshold) a warning. The default, 7, leaves a week to
            react before the critical alarm; 30 and 14 days out are warnings.
        max_validity_days: A fixed validity limit for leaves instead of the CA/B Forum
            schedule; ``None`` uses ``validity_limits``.
        validity_limits: (issued on or after, max days) steps for leaf validity.
        min_rsa_bits: Smallest acceptable RSA modulus.
        min_ec_bits: Smallest acceptable elliptic-curve size.
        weak_signature_hashes: Signature hashes that count as broken (on certificates
            other than self-signed roots, whose signatures nobody checks).
    """

    thresholds_days: tuple[int, ...] = (30, 14, 7, 1)
    critical_within_days: int = 7
    max_validity_days: int | None = None
    validity_limits: tuple[tuple[datetime, int], ...] = CABF_VALIDITY_LIMITS
    min_rsa_bits: int = 2048
    min_ec_bits: int = 256
    weak_signature_hashes: frozenset[str] = frozenset({"md5", "sha1"})

    def __post_init__(self) -> None:
        if not self.thresholds_days or any(d <= 0 for d in self.thresholds_days):
            raise ValueError("thresholds_days must be one or more positive numbers of days")
        if self.critical_within_days < 0:
            raise ValueError("critical_within_days must not be negative")
        if self.max_validity_days is not None and self.max_validity_days <= 0:
            raise ValueError("max_validity_days must be positive (or None for the CA/B rules)")
        if self.min_rsa_bits < 0 or self.min_ec_bits < 0:
            raise ValueError("min_rsa_bits and min_ec_bits must not be negative")
        object.__setattr__(self, "thresholds_days", tuple(sorted(set(self.thresholds_days))))

    def threshold_crossed(self, remaining: timedelta) -> int | None:
        """The smallest threshold (days) that ``remaining`` is within; ``None`` if none.

        Args:
            remaining: Time from ``now`` to notAfter (positive: not yet expired).

        Returns:
            E.g. 7 for 5 days left with the default thresholds; ``None`` for 40 days.
        """
        for days in self.thresholds_days:
            if remaining <= days * _DAY:
                return days
        return None

    def expiry_severity(self, remaining: timedelta) -> Severity | None:
        """How much expiring in ``remaining`` matters; ``None`` beyond every threshold."""
        if self.threshold_crossed(remaining) is None:
            return None
        if remaining <= self.critical_within_days * _DAY:
            return Severity.CRITICAL
        return Severity.WARNING

    def validity_limit_days(self, not_before_utc: datetime) -> int | None:
        """The longest allowed validity of a leaf issued at ``not_before_utc``.

        Returns:
            Days, or ``None`` for leaves issued before any limit applied.
        """
        if self.max_validity_days is not None:
            return self.max_validity_days
        limit: int | None = None
        for since, days in self.validity_limits:
            if not_before_utc >= since:
                limit = days
        return limit

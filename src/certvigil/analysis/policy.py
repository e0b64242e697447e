"""The knobs of judgement: expiry thresholds, key and signature minimums, validity limits."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from certvigil.analysis.thresholds import DEFAULT_THRESHOLDS, ExpiryThreshold, most_urgent_crossed

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


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisPolicy:
    """How strictly to judge. The defaults are those of a careful operator.

    Attributes:
        expiry_thresholds: Expiry thresholds (the type the alert rules and the
            configuration use); a certificate on the path within one yields an
            ``expires_soon`` finding with the most urgent crossed threshold's severity.
            The default, 30/14/7/1 days with 7 and 1 critical, leaves a week to react
            before the critical alarm.
        day_threshold_max_fraction: A days threshold applies to a certificate only
            when it is at most this share of its lifetime (the alert rules' rule, which
            the daemon passes in so findings and alerts agree); ``None`` applies all.
        max_validity_days: A fixed validity limit for leaves instead of the CA/B Forum
            schedule; ``None`` uses ``validity_limits``.
        validity_limits: (issued on or after, max days) steps for leaf validity.
        min_rsa_bits: Smallest acceptable RSA modulus.
        min_ec_bits: Smallest acceptable elliptic-curve size.
        weak_signature_hashes: Signature hashes that count as broken (on certificates
            other than self-signed roots, whose signatures nobody checks).
    """

    expiry_thresholds: tuple[ExpiryThreshold, ...] = DEFAULT_THRESHOLDS
    day_threshold_max_fraction: float | None = None
    max_validity_days: int | None = None
    validity_limits: tuple[tuple[datetime, int], ...] = CABF_VALIDITY_LIMITS
    min_rsa_bits: int = 2048
    min_ec_bits: int = 256
    weak_signature_hashes: frozenset[str] = frozenset({"md5", "sha1"})

    def __post_init__(self) -> None:
        if not self.expiry_thresholds:
            raise ValueError("expiry_thresholds must hold at least one threshold")
        frac = self.day_threshold_max_fraction
        if frac is not None and not 0 < frac <= 1:
            raise ValueError(f"day_threshold_max_fraction must be in (0, 1], not {frac}")
        if self.max_validity_days is not None and self.max_validity_days <= 0:
            raise ValueError("max_validity_days must be positive (or None for the CA/B rules)")
        if self.min_rsa_bits < 0 or self.min_ec_bits < 0:
            raise ValueError("min_rsa_bits and min_ec_bits must not be negative")

    def expiry_crossed(self, remaining: timedelta, lifetime: timedelta) -> ExpiryThreshold | None:
        """The most urgent threshold ``remaining`` is within; ``None`` if none.

        Args:
            remaining: Time from ``now`` to notAfter (positive: not yet expired).
            lifetime: The certificate's validity period.

        Returns:
            E.g. the 7-day threshold for 5 days left with the defaults; ``None`` for 40.
        """
        return most_urgent_crossed(
            self.expiry_thresholds,
            remaining=remaining,
            lifetime=lifetime,
            max_fraction=self.day_threshold_max_fraction,
        )

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

"""Expiry thresholds: the one type the analysis policy, the alert rules and the configuration use.

A threshold is a point before expiry: a number of days, or a share of the certificate's
lifetime. The analysis turns the most urgent crossed threshold into an ``expires_soon``
finding with the threshold's severity; the alert rules raise one alert per crossing and
certificate. Both ask :func:`most_urgent_crossed`, so a stored finding and the alert it
raises agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache

from certvigil.analysis.model import Severity

__all__ = [
    "DEFAULT_THRESHOLDS",
    "ExpiryThreshold",
    "most_urgent_crossed",
    "parse_threshold",
    "thresholds_from_days",
]

_THRESHOLD_RE = re.compile(r"^\s*(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>d|%)?\s*$")


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpiryThreshold:
    """A point before expiry at which a certificate alerts once.

    Exactly one of ``days`` and ``fraction`` is set.

    Attributes:
        days: Alert when at most this many days remain; ``None`` for a fractional threshold.
        fraction: Alert when at most this fraction of the certificate's lifetime
            (``not_after - not_before``) remains, in (0, 1); ``None`` for a days threshold.
        severity: The alert's severity.
    """

    days: float | None = None
    fraction: float | None = None
    severity: Severity = Severity.WARNING

    def __post_init__(self) -> None:
        if (self.days is None) == (self.fraction is None):
            raise ValueError("an expiry threshold needs exactly one of days and fraction")
        if self.days is not None and self.days < 0:
            raise ValueError(f"threshold days must not be negative, not {self.days}")
        if self.fraction is not None and not 0 < self.fraction < 1:
            raise ValueError(f"threshold fraction must be in (0, 1), not {self.fraction}")

    @property
    def label(self) -> str:
        """The threshold as written in configuration and dedup keys: ``"30d"`` or ``"20%"``."""
        if self.days is not None:
            return f"{self.days:g}d"
        return f"{(self.fraction or 0) * 100:g}%"

    def remaining_limit(self, lifetime: timedelta) -> timedelta:
        """The remaining validity at or below which this threshold is crossed."""
        if self.days is not None:
            return _days(self.days)
        return lifetime * (self.fraction or 0)

    def applies_to(self, lifetime: timedelta, max_fraction: float | None) -> bool:
        """Whether the threshold means anything for a certificate of this lifetime.

        A days threshold longer than ``max_fraction`` of the lifetime is skipped: "30 days
        left" is routine for a 90-day ACME certificate awaiting renewal and always true of
        a 6-day one. Fractional thresholds always apply.
        """
        if self.days is None or max_fraction is None:
            return True
        return _days(self.days) <= lifetime * max_fraction


@lru_cache(maxsize=64)
def _days(days: float) -> timedelta:
    """``days`` as a timedelta, made once: a threshold's limit is asked for on every report."""
    return timedelta(days=days)


def parse_threshold(text: str, *, severity: Severity | None = None) -> ExpiryThreshold:
    """Read a threshold written as ``"30d"``, ``"30"`` (days) or ``"20%"`` (of lifetime).

    ``str()`` of a configuration threshold (``certvigil.config.Threshold``) reads back.

    Args:
        text: The threshold as written.
        severity: The alert severity; by default critical for 7 days or less (or 5% or
            less of the lifetime), warning otherwise.

    Raises:
        ValueError: ``text`` is not a positive number of days or a percentage below 100.
    """
    match = _THRESHOLD_RE.match(text)
    if match is None:
        raise ValueError(
            f'expiry threshold "{text}": expected days ("30d") or a percentage ("20%")'
        )
    value = float(match["value"])
    if match["unit"] == "%":
        fraction = value / 100
        if not 0 < fraction < 1:
            raise ValueError(f'expiry threshold "{text}": percentage must be in (0, 100)')
        default = Severity.CRITICAL if fraction <= 0.05 else Severity.WARNING
        return ExpiryThreshold(fraction=fraction, severity=severity or default)
    default = Severity.CRITICAL if value <= 7 else Severity.WARNING
    return ExpiryThreshold(days=value, severity=severity or default)


DEFAULT_THRESHOLDS: tuple[ExpiryThreshold, ...] = tuple(
    parse_threshold(text) for text in ("30d", "14d", "7d", "1d")
)
"""30/14/7/1 days, the last two critical; skipped for lifetimes they do not fit."""


def most_urgent_crossed(
    thresholds: Sequence[ExpiryThreshold],
    *,
    remaining: timedelta,
    lifetime: timedelta,
    max_fraction: float | None,
) -> ExpiryThreshold | None:
    """The most urgent threshold that ``remaining`` validity is within, if any.

    Args:
        thresholds: The thresholds that apply.
        remaining: Time from ``now`` to notAfter.
        lifetime: notAfter - notBefore of the certificate.
        max_fraction: Days thresholds longer than this share of the lifetime are
            skipped (see :meth:`ExpiryThreshold.applies_to`); ``None`` applies all.

    Returns:
        The crossed threshold with the smallest remaining limit; ``None`` for none.
    """
    # One pass, each limit computed once: every report of every endpoint asks this
    # (the findings twice, the alert rules once). The first smallest limit wins.
    found: ExpiryThreshold | None = None
    found_limit: timedelta | None = None
    for threshold in thresholds:
        limit = threshold.remaining_limit(lifetime)
        if (
            remaining <= limit
            and (found_limit is None or limit < found_limit)
            and threshold.applies_to(lifetime, max_fraction)
        ):
            found, found_limit = threshold, limit
    return found


def thresholds_from_days(
    days: Sequence[float], *, critical_within_days: float = 7
) -> tuple[ExpiryThreshold, ...]:
    """Days thresholds (``scan --threshold``), critical at or below ``critical_within_days``.

    Raises:
        ValueError: No threshold, or one that is not positive.
    """
    if not days or any(d <= 0 for d in days):
        raise ValueError("thresholds must be one or more positive numbers of days")
    return tuple(
        ExpiryThreshold(
            days=d,
            severity=Severity.CRITICAL if d <= critical_within_days else Severity.WARNING,
        )
        for d in sorted(set(days), reverse=True)
    )

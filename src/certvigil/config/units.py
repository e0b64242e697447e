"""Parsers for the human forms in a configuration: durations ("1h30m") and thresholds ("20%")."""

from __future__ import annotations

import math
import re
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator

from certvigil.analysis.model import Severity
from certvigil.analysis.thresholds import ExpiryThreshold, parse_threshold

_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")
_MAX_DURATION_TEXT = 64

MAX_DURATION_S = 366 * 86400.0
"""The longest duration a configuration may give (a year and a day); longer is a typo."""

MAX_THRESHOLD_DAYS = 3650
"""The largest threshold in days (ten years before expiry)."""

MIN_THRESHOLD_PERCENT = 0.01
"""The smallest share of the lifetime a threshold may give, in per cent."""

MAX_THRESHOLD_PERCENT = 99.99
"""The largest share of the lifetime a threshold may give, in per cent."""


def parse_duration_s(value: object, *, allow_zero: bool = False) -> float:
    """Seconds from a number of seconds or a text such as ``"90s"``, ``"15m"``, ``"1h30m"``.

    Args:
        value: An int or float (seconds), or a string of number-unit pairs; the units are
            ``s``, ``m``, ``h``, ``d`` and ``w``, a bare number means seconds.

        allow_zero: Accept a zero duration (for delays that may be off).

    Returns:
        The duration in seconds, finite, at most :data:`MAX_DURATION_S`, and greater
        than zero unless ``allow_zero``.

    Raises:
        ValueError: The value is not a duration, is not positive, is not finite or is
            longer than :data:`MAX_DURATION_S`.
    """
    if isinstance(value, bool):
        raise ValueError('must be a duration such as 3600, "90s", "15m" or "1h"')
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        if len(text) > _MAX_DURATION_TEXT:
            raise ValueError(f"a duration of more than {_MAX_DURATION_TEXT} characters")
        pos = 0
        seconds = 0.0
        while pos < len(text):
            match = _DURATION_PART.match(text, pos)
            if match is None or match.end() == pos:
                raise ValueError(
                    f'"{value}" is not a duration; write 3600, "90s", "15m", "1h" or "1h30m"'
                )
            seconds += float(match.group(1)) * _UNIT_S[match.group(2) or "s"]
            pos = match.end()
        if not text:
            raise ValueError('must not be empty; write a duration such as "1h"')
    else:
        raise ValueError('must be a duration such as 3600, "90s", "15m" or "1h"')
    if not math.isfinite(seconds):
        raise ValueError("must be a finite duration, not infinity or NaN")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise ValueError("must be greater than zero")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"must be at most {MAX_DURATION_S:.0f} seconds (366 days)")
    return seconds


DurationS = Annotated[float, BeforeValidator(parse_duration_s)]
"""A duration in seconds that accepts the human forms of :func:`parse_duration_s`."""


def _parse_delay_s(value: object) -> float:
    return parse_duration_s(value, allow_zero=True)


DelayS = Annotated[float, BeforeValidator(_parse_delay_s)]
"""Like :data:`DurationS`, but zero is allowed."""


class Threshold(BaseModel):
    """One alert threshold: a number of days before expiry, or a share of the lifetime.

    Written in a configuration as ``30`` or ``"30d"`` (days), ``"20%"`` (the alert fires
    when less than 20 % of the certificate's validity period is left), or as a mapping
    ``{at: "7d", severity: critical}`` to choose the alert's severity.

    Attributes:
        days: Days before expiry, more than zero; ``None`` for a lifetime threshold.
        lifetime_fraction: Share of the validity period left, in (0, 1); ``None`` for a
            threshold in days.
        severity: The alert's severity; ``None`` lets the alert engine choose (critical
            for 7 days or 5 % and less, warning above).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: int | None = None
    lifetime_fraction: float | None = None
    severity: Severity | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, value: object) -> object:
        if isinstance(value, dict):
            if "at" in value:
                rest = {k: v for k, v in value.items() if k != "at"}
                return {**_parse_threshold(value["at"]), **rest}
            return value
        return _parse_threshold(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> Threshold:
        if (self.days is None) == (self.lifetime_fraction is None):
            raise ValueError("a threshold is either days or a share of the lifetime")
        if self.days is not None and not 0 < self.days <= MAX_THRESHOLD_DAYS:
            raise ValueError(f"days must be 1..{MAX_THRESHOLD_DAYS}")
        fraction = self.lifetime_fraction
        # The bounds keep the label ("0.01%", "99.99%") readable back by the alert rules.
        if fraction is not None and not (
            MIN_THRESHOLD_PERCENT / 100 <= fraction <= MAX_THRESHOLD_PERCENT / 100
        ):
            raise ValueError(
                f"a share of the lifetime must be between {MIN_THRESHOLD_PERCENT:g}% and "
                f"{MAX_THRESHOLD_PERCENT:g}%"
            )
        return self

    @property
    def label(self) -> str:
        """The threshold as written: ``"30d"`` or ``"20%"``."""
        if self.days is not None:
            return f"{self.days}d"
        return f"{(self.lifetime_fraction or 0) * 100:g}%"

    def __str__(self) -> str:
        return self.label

    @property
    def expiry(self) -> ExpiryThreshold:
        """The threshold as the analysis policy and the alert rules use it (the one
        threshold type; this model is only its written form), severity resolved."""
        return parse_threshold(self.label, severity=self.severity)


_THRESHOLD_RULE = 'must be whole days (30, "30d") or a share of the lifetime ("20%")'


def _parse_threshold(value: object) -> dict[str, object]:
    if isinstance(value, bool):
        raise ValueError(_THRESHOLD_RULE)
    if isinstance(value, int):
        return {"days": value}
    if isinstance(value, str):
        text = value.strip().lower()
        if len(text) > _MAX_DURATION_TEXT or not re.fullmatch(r"[0-9.]+\s*[d%]?", text):
            raise ValueError(f'"{value}": {_THRESHOLD_RULE}')
        try:
            if text.endswith("%"):
                return {"lifetime_fraction": float(text[:-1]) / 100}
            if text.endswith("d"):
                return {"days": int(text[:-1])}
            return {"days": int(text)}
        except ValueError:
            raise ValueError(f'"{value}": {_THRESHOLD_RULE}') from None
    raise ValueError(_THRESHOLD_RULE)

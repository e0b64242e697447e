"""The ``checks:`` settings: which checks the daemon runs on an endpoint, and how often.

A certificate check costs one handshake; revocation a few HTTP requests (CRLs are shared
by every endpoint under one issuer); a protocol and cipher enumeration about forty
handshakes. So each check has its own interval and jitter: by default the certificate
and revocation are checked every time the endpoint is scanned, protocols and the grade
once a day. ``protocols`` and ``grade`` come from the same probes: when either is due,
both are computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from certvigil.config.units import DelayS, DurationS

MIN_CHECK_INTERVAL_S = 1.0
"""The shortest interval a check may have."""


class CheckName(StrEnum):
    """The checks the daemon schedules, as written in ``checks:``."""

    CERT = "cert"
    REVOCATION = "revocation"
    PROTOCOLS = "protocols"
    GRADE = "grade"


class CheckSchedule(BaseModel):
    """How often one check runs.

    Written as a mapping (``{interval: 1d, jitter: 1h}``), as a bare interval
    (``protocols: 12h``), as ``false`` (off) or as ``true`` (on, every scan).

    Attributes:
        enabled: Run the check at all.
        interval_s: Seconds between two runs on one endpoint; ``None`` runs it every
            time the endpoint is scanned (``scan.interval`` or the target's own).
        jitter_s: Up to this many seconds are added at random after each run, so
            that an expensive check does not hit every endpoint in the same cycle.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    enabled: bool = True
    interval_s: DurationS | None = Field(default=None, alias="interval", ge=MIN_CHECK_INTERVAL_S)
    jitter_s: DelayS = Field(default=0.0, alias="jitter")

    @model_validator(mode="before")
    @classmethod
    def _from_scalar(cls, value: object) -> object:
        if isinstance(value, bool):
            return {"enabled": value}
        if isinstance(value, int | float | str):
            return {"interval": value}
        return value


DAILY = CheckSchedule.model_validate({"interval": 86400.0, "jitter": 3600.0})
"""Once a day, spread over an hour: the default of the expensive checks."""


class ChecksSettings(BaseModel):
    """The global ``checks:`` section: every check's schedule.

    Attributes:
        cert: Expiry, chain, trust, hostname, key and signature (one handshake); it
            cannot be switched off, since every other check starts from its handshake.
        revocation: OCSP (the staple first) with CRL fallback.
        protocols: Protocol, cipher-suite, group and option probes (~40 handshakes).
        grade: The SSL Labs-style grade (needs the protocol probes and revocation).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cert: CheckSchedule = CheckSchedule()
    revocation: CheckSchedule = CheckSchedule()
    protocols: CheckSchedule = DAILY
    grade: CheckSchedule = DAILY

    @model_validator(mode="after")
    def _cert_stays_on(self) -> ChecksSettings:
        if not self.cert.enabled:
            raise ValueError(
                "cert cannot be switched off: every other check starts from its handshake"
            )
        return self


DEFAULT_CHECKS = ChecksSettings()
"""Every check on, certificate and revocation every scan, protocols and grade daily."""


class ChecksOverride(BaseModel):
    """A target's ``checks:``: the checks it schedules differently from the global ones.

    Attributes:
        cert: As in :class:`ChecksSettings`; ``None`` keeps the global setting.
        revocation: Same.
        protocols: Same.
        grade: Same.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    cert: CheckSchedule | None = None
    revocation: CheckSchedule | None = None
    protocols: CheckSchedule | None = None
    grade: CheckSchedule | None = None

    @model_validator(mode="after")
    def _cert_stays_on(self) -> ChecksOverride:
        if self.cert is not None and not self.cert.enabled:
            raise ValueError(
                "cert cannot be switched off: every other check starts from its handshake"
            )
        return self

    def over(self, base: ChecksSettings) -> ChecksSettings:
        """The global settings with this target's overrides applied."""
        return ChecksSettings(
            cert=self.cert or base.cert,
            revocation=self.revocation or base.revocation,
            protocols=self.protocols or base.protocols,
            grade=self.grade or base.grade,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ChecksToRun:
    """The optional checks one scan of an endpoint runs (the certificate always runs).

    Attributes:
        revocation: Check OCSP/CRL and the staple.
        tls_config: Probe protocols and suites, and grade (``protocols`` or ``grade``).
    """

    revocation: bool = False
    tls_config: bool = False

    @property
    def names(self) -> tuple[CheckName, ...]:
        """The checks this covers, ``cert`` first."""
        names = [CheckName.CERT]
        if self.revocation:
            names.append(CheckName.REVOCATION)
        if self.tls_config:
            names += [CheckName.PROTOCOLS, CheckName.GRADE]
        return tuple(names)


def schedule_of(checks: ChecksSettings, name: CheckName) -> CheckSchedule:
    """The schedule of ``name`` in ``checks``."""
    schedule: CheckSchedule = getattr(checks, name.value)
    return schedule

"""Everything the probes saw for one endpoint at one time: the unit that is judged and kept.

The scan fills one :class:`EndpointObservation` per target (handshake, AIA issuers,
revocation fetches, protocol and cipher probes) and judges it once, at the end, with
``certvigil.analysis.judge.judge``. The store keeps it, ``scan --json
--include-observation`` writes it and ``certvigil rejudge`` judges it again later; its
JSON form is ``certvigil.observed.codec`` (schema ``docs/schema/observation.schema.json``).

Nothing here is a judgement: a field says what was sent, fetched or refused, never
whether that is good. CRLs are large and shared by every endpoint under one issuer: in
memory, every observation refers to the one ``bytes`` object the scan's CRL cache holds;
in JSON, a CRL is written once per document (or once in a caller's shared map) and the
fetches refer to it by its SHA-256.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from certvigil.observed.handshake import ProbeFailure, TlsObservation
from certvigil.observed.issuers import IssuerFetch
from certvigil.observed.revocation import RevocationObservation
from certvigil.observed.tls_config import TlsConfigObservation
from certvigil.targets.target import Target

__all__ = ["EndpointObservation", "ObservedStep"]


class ObservedStep(StrEnum):
    """The optional steps of an observation beyond the handshake; stable strings."""

    ISSUERS = "issuers"
    """Fetching issuers the server did not send from AIA CA-issuers URLs."""
    REVOCATION = "revocation"
    """Fetching OCSP responses and CRLs for the served chain."""
    TLS_CONFIG = "tls_config"
    """Probing protocols, cipher suites, groups, options and HTTP (HSTS)."""

    @property
    def description(self) -> str:
        """The step in words, as findings name it."""
        return _DESCRIPTIONS[self]


_DESCRIPTIONS = {
    ObservedStep.ISSUERS: "fetching the missing issuers",
    ObservedStep.REVOCATION: "the revocation check",
    ObservedStep.TLS_CONFIG: "protocols and ciphers",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointObservation:
    """Raw facts about one endpoint, gathered by one scan of it; no judgement.

    Attributes:
        target: What was probed.
        observed_at_utc: When the handshake completed or failed (aware UTC); the
            other steps follow it within the endpoint's deadline.
        handshake: The TLS handshake (chain as served, protocol, cipher, ALPN,
            address, timings, stapled OCSP response) or why there was none.
        issuer_fetches: The AIA CA-issuers URLs fetched to complete the served chain,
            in the order fetched, with what each gave; empty when none was needed or
            the step did not run.
        revocation: The OCSP and CRL fetches for the served chain and the staple;
            ``None`` when revocation was not checked (or there was no handshake).
        tls_config: What the protocol, suite, group, option and HTTP (HSTS) probes
            saw, or why they could not run; ``None`` when they were not asked for.
        steps: The optional steps that were asked for, whether or not they ran to
            the end (a step asked for on a failed handshake does not run).
        cut_steps: Of ``steps``, those the endpoint's deadline cut short; what they
            had gathered is left out.
        deadline_s: The endpoint's total deadline, ``None`` when it had none.
    """

    target: Target
    observed_at_utc: datetime
    handshake: TlsObservation | ProbeFailure
    issuer_fetches: tuple[IssuerFetch, ...] = ()
    revocation: RevocationObservation | None = None
    tls_config: TlsConfigObservation | ProbeFailure | None = None
    steps: tuple[ObservedStep, ...] = ()
    cut_steps: tuple[ObservedStep, ...] = ()
    deadline_s: float | None = None

    @property
    def tls(self) -> TlsObservation | None:
        """The handshake when it succeeded, else ``None``."""
        return self.handshake if isinstance(self.handshake, TlsObservation) else None

    @property
    def failure(self) -> ProbeFailure | None:
        """The handshake's failure, ``None`` when it succeeded."""
        return self.handshake if isinstance(self.handshake, ProbeFailure) else None

    @property
    def fetched_issuers_der(self) -> tuple[bytes, ...]:
        """Every certificate the AIA fetches gave, in the order fetched, without repeats."""
        return tuple(
            dict.fromkeys(der for fetch in self.issuer_fetches for der in fetch.certificates_der)
        )

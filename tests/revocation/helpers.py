"""Helpers for revocation tests: clocks, leaves naming the loopback server, a runner."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from certvigil.analysis.revocation import judge_revocation
from certvigil.analysis.revocation_model import RevocationReport
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.observed.revocation import RevocationObservation
from certvigil.probe.revocation import CrlCache, RevocationOptions, check_revocation
from tests.support.ocsp_responder import GOOD, RevocationServer, build_crl


def utc_now() -> datetime:
    """The real clock, aware UTC (the loopback responder signs with real time)."""
    return datetime.now(UTC)


@dataclass
class MovableClock:
    """A clock the test moves by hand (the CRL cache's injected time source)."""

    now_utc: datetime = field(default_factory=utc_now)

    def __call__(self) -> datetime:
        return self.now_utc

    def advance(self, delta: timedelta) -> None:
        self.now_utc += delta


def fresh_crl(pki: ThrowawayPki, revoked: Sequence[tuple[int, Any]] = ()) -> bytes:
    """A current CRL from the intermediate listing ``revoked``."""
    now = utc_now()
    return build_crl(
        issuer=pki.intermediate.issued,
        this_update_utc=now - timedelta(hours=1),
        next_update_utc=now + timedelta(days=7),
        revoked=revoked,
    )


def issue(
    pki: ThrowawayPki,
    server: RevocationServer,
    *,
    ocsp: bool = True,
    crl: bool = False,
    good: bool = True,
    **options: Any,
) -> IssuedCert:
    """A leaf that names this server's responder and/or CRL, marked good when asked."""
    leaf = pki.issue_leaf(
        ocsp_urls=[server.url("/ocsp")] if ocsp else [],
        crl_urls=[server.url("/int.crl")] if crl else [],
        **options,
    )
    if good and server.responder is not None:
        server.responder.statuses[leaf.certificate.serial_number] = GOOD
    return leaf


def observe(
    chain_der: Sequence[bytes],
    *,
    options: RevocationOptions | None = None,
    cache: CrlCache | None = None,
    clock: Callable[[], datetime] = utc_now,
    **kwargs: Any,
) -> RevocationObservation:
    """Run the network half against loopback servers with a fresh client."""

    async def run() -> RevocationObservation:
        async with httpx.AsyncClient() as http:
            return await check_revocation(
                chain_der,
                http=http,
                crl_cache=cache if cache is not None else CrlCache(clock=clock),
                clock=clock,
                options=options or RevocationOptions(timeout_s=2.0, total_timeout_s=5.0),
                **kwargs,
            )

    return asyncio.run(run())


def check(chain_der: Sequence[bytes], **kwargs: Any) -> RevocationReport:
    """Fetch, then judge at the real current time."""
    return judge_revocation(observe(chain_der, **kwargs), now=utc_now())

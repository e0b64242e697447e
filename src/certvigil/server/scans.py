"""Scans on request (``POST /api/v1/scans``), fenced by ``serve.scan_allow``.

Every target, each address of a CIDR block included, must be inside the allow-list,
else the whole request is refused with 403 and nothing is probed. A host name must match
a pattern and is resolved once, here: its addresses pass the allow-list's DNS rule
(``server/allowlist.py``: by default only addresses inside its blocks are kept, and a name
with none is refused) and the probe connects to those, not to a second lookup.

The assessment is the daemon's: the certificate checks, the missing issuers from AIA
URLs, OCSP with CRL fallback and the staple when ``checks.revocation`` is on, the
protocol and cipher probes and the grade when ``checks.protocols`` or ``checks.grade``
is. Every fetch for it (AIA, OCSP, CRL: URLs the scanned server chose) goes through a
client fenced by the same allow-list, each redirect hop checked
(``certvigil.probe.fenced_http``); a refused one is reported as ``fetch_not_allowed``
("not checked: <url> outside the allow-list"), never passed over in silence.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from certvigil.analysis.codes import FindingCode
from certvigil.analysis.judge import judge
from certvigil.analysis.model import EndpointReport
from certvigil.analysis.trust import TrustStore
from certvigil.config.expand import entry_targets
from certvigil.config.model import Config, TargetEntry
from certvigil.daemon.runner import scan_options_for, with_timeout
from certvigil.errors import ConfigError, TargetError
from certvigil.files.truststore import load_trust_store
from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.handshake import FailureKind, ProbeFailure
from certvigil.probe.fenced_http import fenced_client
from certvigil.probe.resolve import DnsFailure, resolve_addresses
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import EndpointScanner
from certvigil.server.errors import ApiError
from certvigil.server.ingest import store_reports
from certvigil.server.shapes import finding_json, target_json
from certvigil.targets.target import Target

if TYPE_CHECKING:
    from certvigil.server.app import ServerState

MAX_SCAN_TARGETS = 256
"""Most endpoints one request may scan."""


def allowed_targets(state: ServerState, entries: Sequence[TargetEntry]) -> list[Target]:
    """The endpoints of a request, all inside the allow-list.

    Raises:
        ApiError: 403 for any endpoint outside it (or an empty allow-list), 400 for
            too many endpoints or a host that does not parse.
    """
    if state.allow.is_empty:
        raise ApiError(403, "not_allowed", "scans on request are off: serve.scan_allow is empty")
    targets: list[Target] = []
    for index, entry in enumerate(entries):
        try:
            for target in entry_targets(entry):
                if len(targets) >= MAX_SCAN_TARGETS:
                    raise ApiError(
                        400, "too_many", f"targets: more than {MAX_SCAN_TARGETS} endpoints"
                    )
                for name in (target.host, target.sni):
                    if name is not None and not state.allow.allows_host(name):
                        raise ApiError(
                            403,
                            "not_allowed",
                            f"targets[{index}]: {name} is outside serve.scan_allow",
                            {"index": index, "host": name},
                        )
                targets.append(target)
        except TargetError as exc:
            raise ApiError(400, "bad_target", f"targets[{index}]: {exc}") from None
    return targets


def request_scan_options(config: Config, endpoints: int) -> ScanOptions:
    """The daemon's scan options and checks for a scan on request of ``endpoints``."""
    checks = config.checks
    return replace(
        with_timeout(scan_options_for(config), config.scan.timeout_s),
        concurrency=max(1, min(16, endpoints)),
        fetch_missing_issuers=True,
        revocation=checks.revocation.enabled,
        deep=checks.protocols.enabled or checks.grade.enabled,
    )


async def checked_addresses(
    state: ServerState, targets: Sequence[Target], *, dns_timeout_s: float
) -> list[tuple[str, ...] | DnsFailure]:
    """Each target's addresses, resolved once and passed through the allow-list.

    Raises:
        ApiError: 403 when a name resolves to no address the allow-list keeps.
    """

    async def one(target: Target) -> tuple[str, ...] | DnsFailure:
        try:
            resolved = await resolve_addresses(target.host, target.port, timeout_s=dns_timeout_s)
        except DnsFailure as exc:
            return exc
        return resolved

    resolved = await asyncio.gather(*(one(t) for t in targets))
    for index, (target, found) in enumerate(zip(targets, resolved, strict=True)):
        if isinstance(found, DnsFailure):
            continue
        allowed = state.allow.allowed_addresses(target.host, found)
        if not allowed:
            raise ApiError(
                403,
                "not_allowed",
                f"{target.host} resolves to {', '.join(found[:4])}, outside serve.scan_allow",
                {"index": index, "host": target.host, "addresses": list(found[:16])},
            )
        resolved[index] = allowed
    return resolved


def _unresolved_report(
    target: Target,
    failure: DnsFailure,
    *,
    options: ScanOptions,
    trust: TrustStore,
    state: ServerState,
) -> EndpointReport:
    now = state.clock()
    observation = EndpointObservation(
        target=target,
        observed_at_utc=now,
        handshake=ProbeFailure(
            target=target, kind=FailureKind.DNS_FAILURE, detail=failure.detail, observed_at_utc=now
        ),
        deadline_s=options.deadline_s,
    )
    return judge(observation, now, trust, options.policy)


async def scan_on_request(
    state: ServerState, entries: Sequence[TargetEntry], *, by: str
) -> dict[str, Any]:
    """Probes, records and judges the requested endpoints."""
    targets = allowed_targets(state, entries)
    config = state.loaded.config
    options = request_scan_options(config, len(targets))
    addresses = await checked_addresses(state, targets, dns_timeout_s=options.dns_timeout_s)
    try:
        trust = await asyncio.to_thread(
            load_trust_store,
            ca_files=tuple(state.loaded.resolve(p) for p in config.trust.ca_files),
            use_system=config.trust.system,
            include_default=config.trust.public,
        )
    except ConfigError as exc:
        raise ApiError(503, "unavailable", f"the server's trust store: {exc}") from None
    async with (
        fenced_client(
            state.allow, timeout_s=options.aia_timeout_s, dns_timeout_s=options.dns_timeout_s
        ) as http,
        EndpointScanner(options=options, trust=trust, clock=state.clock, http=http) as scanner,
    ):

        async def one(target: Target, found: tuple[str, ...] | DnsFailure) -> EndpointReport:
            if isinstance(found, DnsFailure):
                return _unresolved_report(target, found, options=options, trust=trust, state=state)
            return await scanner.report(target, addresses=found)

        reports = list(
            await asyncio.gather(*(one(t, a) for t, a in zip(targets, addresses, strict=True)))
        )
    now = state.clock()
    observation_ids, events = await asyncio.to_thread(
        store_reports, state.store, state.engine(), reports, now=now
    )
    if events:
        state.hub.wake()
    return {
        "requested_by": by,
        "items": [
            {
                "observation_id": observation_id,
                "endpoint": target_json(report.target),
                "status": "failed" if report.is_failed else "ok",
                "failure": report.failure.detail if report.failure is not None else None,
                "leaf_sha256": report.leaf.sha256_hex if report.leaf is not None else None,
                "verdict": report.verdict.value,
                "findings": [finding_json(f) for f in report.findings],
                "not_checked": [
                    f.message for f in report.findings if f.code == FindingCode.FETCH_NOT_ALLOWED
                ],
            }
            for report, observation_id in zip(reports, observation_ids, strict=True)
        ],
    }

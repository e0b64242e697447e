"""Scans on request (``POST /api/v1/scans``), fenced by ``serve.scan_allow``.

Every target, each address of a CIDR block included, must be inside the allow-list,
else the whole request is refused with 403 and nothing is probed. The scan fetches
nothing on the request's behalf: missing issuers are not fetched from AIA and
revocation is not checked, so no URL taken from a certificate (which the scanned
server controls, redirects included) is ever requested by the server. A name pattern
trusts the server's DNS for where the name leads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from certvigil.config.expand import entry_targets
from certvigil.config.model import TargetEntry
from certvigil.errors import ConfigError, TargetError
from certvigil.files.truststore import load_trust_store
from certvigil.scan.scanner import ScanOptions, scan_stream
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


async def scan_on_request(
    state: ServerState, entries: Sequence[TargetEntry], *, by: str
) -> dict[str, Any]:
    """Probes, records and judges the requested endpoints."""
    targets = allowed_targets(state, entries)
    config = state.loaded.config
    try:
        trust = await asyncio.to_thread(
            load_trust_store,
            ca_files=tuple(state.loaded.resolve(p) for p in config.trust.ca_files),
            use_system=config.trust.system,
            include_default=config.trust.public,
        )
    except ConfigError as exc:
        raise ApiError(503, "unavailable", f"the server's trust store: {exc}") from None
    options = ScanOptions(
        concurrency=min(16, len(targets)),
        fetch_missing_issuers=False,
        revocation=False,
    )
    reports = [
        r async for r in scan_stream(targets, options=options, trust=trust, clock=state.clock)
    ]
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
            }
            for report, observation_id in zip(reports, observation_ids, strict=True)
        ],
    }

"""Re-checking the names found in CT: live or not, where, and in which network (AS).

A look-alike registered today may serve its phishing page next week, so after each pass
``ct watch`` checks again (``ct.liveness``) the names of findings younger than
``until`` whose last check is older than ``recheck_every``: the longest unchecked first,
at most ``max_names_per_pass`` per pass, a few at a time. Each check (``liveness``) is
stored as a row of ``ct_liveness_checks`` with the AS of the address it reached (or the
first resolved): from the offline iptoasn table when it covers the address, else from
Team Cymru's DNS service; a failed AS lookup leaves the AS empty and says why.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dns.asyncresolver
from sqlalchemy import Connection, Row, func, select

from certvigil.ct.asn import AsnInfo, AsnTable
from certvigil.ct.fetch.asn import AsnLookupError, lookup_asn
from certvigil.ct.watch.liveness import Liveness, check_liveness
from certvigil.store.ct_liveness_models import CT_LIVENESS_CHECKS
from certvigil.store.ct_models import CT_FINDINGS

_PARALLEL = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class LivenessCheck:
    """A stored check of one name of a finding.

    Attributes:
        finding_id: The finding whose name it is.
        name: The name checked (wildcards at their base name).
        checked_at_utc: When.
        liveness: What it answered.
        asn: The AS of ``liveness.address`` (or the first address), ``None``: unknown.
        asn_error: Why the AS is unknown when a lookup failed (``""`` otherwise).
    """

    finding_id: int
    name: str
    checked_at_utc: datetime
    liveness: Liveness
    asn: AsnInfo | None
    asn_error: str = ""


class AsnSource:
    """The offline table first, then Team Cymru over DNS (when allowed)."""

    def __init__(
        self,
        *,
        table: AsnTable | None,
        use_dns: bool,
        resolver: dns.asyncresolver.Resolver | None,
        deadline_s: float,
    ) -> None:
        self.table = table
        self.use_dns = use_dns
        self.resolver = resolver
        self.deadline_s = deadline_s

    async def lookup(self, address: str) -> tuple[AsnInfo | None, str]:
        """The AS of ``address`` and, when it is unknown because a lookup failed, why."""
        if self.table is not None:
            found = self.table.lookup(address)
            if found is not None:
                return found, ""
        if not self.use_dns:
            return None, ""
        try:
            return await lookup_asn(address, resolver=self.resolver, deadline_s=self.deadline_s), ""
        except AsnLookupError as exc:
            return None, str(exc)
        except ValueError:
            return None, f"{address[:64]!r} is not an address"


def names_due(
    connection: Connection,
    *,
    now: datetime,
    recheck_every: timedelta,
    until: timedelta,
    limit: int,
) -> list[tuple[int, str]]:
    """(finding id, name) pairs to check now: the finding younger than ``until``, the name
    never checked or last checked ``recheck_every`` ago or more; longest unchecked first."""
    f = CT_FINDINGS.c
    c = CT_LIVENESS_CHECKS.c
    findings = connection.execute(
        select(f.id, f.names).where(f.found_at_utc >= now - until).order_by(f.id)
    ).all()
    if not findings:
        return []
    last = {
        (row.finding_id, row.name): row.last
        for row in connection.execute(
            select(c.finding_id, c.name, func.max(c.checked_at_utc).label("last"))
            .where(c.finding_id.in_([r.id for r in findings]))
            .group_by(c.finding_id, c.name)
        )
    }
    due: list[tuple[datetime | None, int, str]] = []
    for row in findings:
        for name in dict.fromkeys(n.removeprefix("*.") for n in row.names):
            checked = last.get((row.id, name))
            if checked is None or checked <= now - recheck_every:
                due.append((checked, row.id, name))
    # Never checked first, then the longest ago.
    due.sort(key=lambda item: (item[0] is not None, item[0] or now, item[1]))
    return [(finding_id, name) for _, finding_id, name in due[:limit]]


def record_checks(connection: Connection, checks: list[LivenessCheck]) -> None:
    """Store checks (one row each)."""
    if not checks:
        return
    connection.execute(
        CT_LIVENESS_CHECKS.insert(),
        [
            {
                "finding_id": check.finding_id,
                "name": check.name[:255],
                "checked_at_utc": check.checked_at_utc,
                "addresses": list(check.liveness.addresses[:32]),
                "address": check.liveness.address,
                "https_status": check.liveness.https_status,
                "title": check.liveness.title,
                "asn": check.asn.asn if check.asn else None,
                "asn_prefix": check.asn.prefix if check.asn else None,
                "asn_country": (check.asn.country or "")[:16] or None if check.asn else None,
                "asn_name": check.asn.name if check.asn else None,
                "asn_source": check.asn.source if check.asn else None,
                "error": (check.liveness.error or check.asn_error)[:1000],
            }
            for check in checks
        ],
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredCheck:
    """The latest stored check of a name, for ``ct findings``.

    Attributes:
        name: The name.
        checked_at_utc: When it was last checked.
        checks: How many times it was checked.
        addresses, address, https_status, title, error: As in ``Liveness``.
        asn, asn_prefix, asn_country, asn_name, asn_source: As in ``AsnInfo``
            (``None``: unknown).
    """

    name: str
    checked_at_utc: datetime
    checks: int
    addresses: tuple[str, ...]
    address: str | None
    https_status: int | None
    title: str | None
    asn: int | None
    asn_prefix: str | None
    asn_country: str | None
    asn_name: str | None
    asn_source: str | None
    error: str


def latest_checks(connection: Connection, finding_ids: list[int]) -> dict[int, list[StoredCheck]]:
    """The latest check of each checked name of these findings, by finding."""
    if not finding_ids:
        return {}
    c = CT_LIVENESS_CHECKS.c
    rows = connection.execute(
        select(CT_LIVENESS_CHECKS)
        .where(c.finding_id.in_(finding_ids))
        .order_by(c.finding_id, c.name, c.checked_at_utc, c.id)
    ).all()
    latest: dict[tuple[int, str], tuple[Row[Any], int]] = {}
    for row in rows:
        key = (row.finding_id, row.name)
        count = latest[key][1] + 1 if key in latest else 1
        latest[key] = (row, count)
    found: dict[int, list[StoredCheck]] = {}
    for (finding_id, name), (row, count) in latest.items():
        found.setdefault(finding_id, []).append(
            StoredCheck(
                name=name,
                checked_at_utc=row.checked_at_utc,
                checks=count,
                addresses=tuple(row.addresses or ()),
                address=row.address,
                https_status=row.https_status,
                title=row.title,
                asn=row.asn,
                asn_prefix=row.asn_prefix,
                asn_country=row.asn_country,
                asn_name=row.asn_name,
                asn_source=row.asn_source,
                error=row.error,
            )
        )
    return found


async def check_names(
    due: list[tuple[int, str]],
    *,
    now: datetime,
    asn: AsnSource,
    resolver: dns.asyncresolver.Resolver | None,
    port: int,
    deadline_s: float,
) -> list[LivenessCheck]:
    """Check each (finding, name), a few at a time; failures are in the results."""
    gate = asyncio.Semaphore(_PARALLEL)

    async def one(finding_id: int, name: str) -> LivenessCheck:
        async with gate:
            live = await check_liveness(name, resolver=resolver, port=port, deadline_s=deadline_s)
            address = live.address or (live.addresses[0] if live.addresses else None)
            info, error = (None, "") if address is None else await asn.lookup(address)
            return LivenessCheck(
                finding_id=finding_id,
                name=live.name,
                checked_at_utc=now,
                liveness=live,
                asn=info,
                asn_error=error,
            )

    return list(await asyncio.gather(*(one(fid, name) for fid, name in due)))

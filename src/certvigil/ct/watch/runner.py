"""``certvigil ct watch``: read every watched log, match, judge, store and alert.

One pass per log reads from its stored position up to its current verified tree head
(``ct.fetch.tail.LogTail``). Each entry's names are read from its TBS and looked up in the
watch list; only a matching entry has its issuer and facts decoded. Every
``commit_every`` entries, one transaction commits the batch's findings, sightings, known
names, alerts (with their queued deliveries) and the log's new position; so a restart,
even after SIGKILL, resumes at the first entry whose batch was not committed, and reads
it again from scratch: no entry is skipped, none is counted or alerted twice.

A certificate seen again (its precertificate, the same certificate in another log, or
a renewal of the same names by the same CA) is recorded as a sighting of the first
finding and raises nothing. After each pass the log's health is judged: a fault (bad
signature, a tile not in the tree, contradicting tree heads) opens ``ct_log_fault``; no
success for ``stalled_after`` opens ``ct_log_stalled``; a backlog older than
``behind_after`` opens ``ct_log_behind``; a clean pass resolves them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dns.asyncresolver
import httpx
from sqlalchemy import Connection, select

from certvigil.alerts.engine import AlertEngine
from certvigil.alerts.rules import AlertEvent, AlertKind, EventAction
from certvigil.analysis.model import Severity
from certvigil.config.ct import CtSettings
from certvigil.ct.asn import AsnDataError, AsnTable
from certvigil.ct.caa import CaaPolicy
from certvigil.ct.codec import DecodeError
from certvigil.ct.entry import LogEntry
from certvigil.ct.errors import CtError, MalformedEntryError
from certvigil.ct.fetch.caa import CaaLookupError, lookup_caa
from certvigil.ct.fetch.http import FetchPolicy, LogFetcher
from certvigil.ct.fetch.rfc6962 import Rfc6962Reader
from certvigil.ct.fetch.static import MAX_ISSUERS_CACHED, IssuerCache, StaticReader
from certvigil.ct.fetch.tail import LogTail, TailState
from certvigil.ct.judge import (
    CertFacts,
    CtVerdict,
    DomainPolicy,
    WatchPolicy,
    ca_identity,
    certificate_facts,
    judge,
    new_names,
)
from certvigil.ct.keywords import KeywordResult, KeywordRules
from certvigil.ct.log_list import CtLog, LogProtocol, TailPlan
from certvigil.ct.lookalike import LookalikeIndex, LookalikeMatch
from certvigil.ct.match import NameMatch, WatchList
from certvigil.ct.names import entry_issuer, names_from_tbs, parse_entry_tbs
from certvigil.ct.rfc6962 import MalformedEntry, complete_entry
from certvigil.ct.watch import persist, recheck
from certvigil.store import Store
from certvigil.store.models import CERTIFICATES, DEPLOYMENTS, ENDPOINTS

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time, aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Matched:
    """An entry whose names fell under the watch (or imitate it), with its facts."""

    index: int
    facts: CertFacts
    matches: tuple[NameMatch, ...]
    lookalikes: tuple[LookalikeMatch, ...] = ()
    keyword_hits: tuple[KeywordResult, ...] = ()


@dataclass(slots=True)
class PassReport:
    """What one pass over one log did (for the command's summary and tests).

    Attributes:
        log: The log's description.
        handled: Entries handed out by the log in this pass.
        matched: Entries whose names fell under the watch.
        new_findings: Certificates found for the first time.
        alerts: Alert events applied (opened or notified).
        state: The log's state after the pass.
        started_at_end: The log was new and starts at its end.
    """

    log: str
    handled: int = 0
    matched: int = 0
    new_findings: int = 0
    alerts: int = 0
    state: TailState = field(default_factory=TailState)
    started_at_end: bool = False


def _dedup_key(kind: str, subject: str) -> str:
    return f"ct:{kind}:{hashlib.sha256(subject.encode()).hexdigest()[:40]}"


class CtWatch:
    """Reads the watched logs into the store and the alert engine.

    Args:
        settings: The ``ct:`` section.
        store: The inventory (its CT tables and alerts).
        engine: The alert engine (routes included).
        base_dir: The configuration file's directory (relative paths).
        clock: Gives ``now``; the tail records its own success times.
        policy: HTTP politeness and deadlines for every log.
        log_line: Where progress lines go (stderr by default).
    """

    def __init__(
        self,
        settings: CtSettings,
        store: Store,
        engine: AlertEngine,
        *,
        base_dir: Path,
        clock: Clock = utc_now,
        policy: FetchPolicy | None = None,
        log_line: Callable[[str], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.engine = engine
        self.base_dir = base_dir
        self.clock = clock
        self.policy = policy or FetchPolicy()
        self.log_line = log_line or (lambda text: print(text, file=sys.stderr))
        self.watchlist = WatchList(d.name for d in settings.domains)
        self.lookalikes: LookalikeIndex | None = None
        if settings.lookalikes and settings.domains:
            # dnstwist permutations and skeletons: about 10 ms per domain, once.
            self.lookalikes = LookalikeIndex.build(d.name for d in settings.domains)
        keywords = settings.keywords
        self.keywords: KeywordRules | None = None
        if keywords.search:
            self.keywords = KeywordRules(
                keywords.search, threshold=keywords.threshold, blacklist=keywords.blacklist
            )
        self.issuers = IssuerCache()
        self._known: set[str] = set()
        self._scan_domains = {d.name for d in settings.domains if d.scan_new_names}
        self._caa: dict[str, CaaPolicy | None] = {}
        self._asn: AsnTable | None = None
        self._configured_cas = {
            d.name: {ca_identity(ca) for ca in d.authorized_cas}
            for d in settings.domains
            if d.authorized_cas
        }

    # --- set-up -----------------------------------------------------------------

    def prepare(self) -> None:
        """Record the configured and inventoried names as known (not new)."""
        now = self.clock()
        configured: dict[str, str] = {}
        for domain in self.settings.domains:
            for name in domain.known_names:
                base = name[2:] if name.startswith("*.") else name
                configured[base] = domain.name
        with self.store.write() as connection:
            persist.add_known_names(connection, configured, source="config", now=now)
            hosts = connection.execute(select(ENDPOINTS.c.host).distinct()).scalars()
            inventoried = {
                match.name: match.watched
                for host in hosts
                for match in self.watchlist.watched_for(host.lower())
            }
            persist.add_known_names(connection, inventoried, source="inventory", now=now)
            self._known = persist.known_names(connection)
            # Static logs' issuers fetched in earlier runs: never fetched again.
            self.issuers.preload(persist.load_issuers(connection, MAX_ISSUERS_CACHED))

    def _policy(self, connection: Connection) -> WatchPolicy:
        """The judging policy now: configured authorised CAs plus the stored ones.

        Only domains with an authorised set are listed (the others are not judged), so
        the stored rows are read at each commit but a thousand-domain watch costs
        nothing more.
        """
        authorized = {name: set(cas) for name, cas in self._configured_cas.items()}
        for domain, cas in persist.authorized_cas(connection).items():
            if domain in self.watchlist:
                authorized.setdefault(domain, set()).update(cas)
        for domain, caa in self._caa.items():
            if caa is not None and caa.found_at is not None:
                authorized.setdefault(domain, set())
        return WatchPolicy(
            domains={
                name: DomainPolicy(name=name, authorized=frozenset(cas), caa=self._caa.get(name))
                for name, cas in authorized.items()
            },
            short_lived_under=timedelta(seconds=self.settings.short_lived_under),
            expiring_within=timedelta(seconds=self.settings.expiring_within),
        )

    async def refresh_caa(self) -> None:
        """Read every watched domain's CAA policy (a failed lookup is ``None``: not used)."""
        if not self.settings.caa:
            return
        resolver = self._resolver()
        gate = asyncio.Semaphore(16)

        async def one(domain: str) -> tuple[str, CaaPolicy | None]:
            async with gate:
                try:
                    return domain, await lookup_caa(domain, resolver=resolver, deadline_s=10.0)
                except CaaLookupError as exc:
                    self.log_line(f"{exc}: CAA not used for {domain} in this pass")
                    return domain, None

        found = await asyncio.gather(*(one(d.name) for d in self.settings.domains))
        self._caa = dict(found)

    # --- passes -----------------------------------------------------------------

    async def run(
        self, plans: Iterable[TailPlan], *, once: bool, from_start: bool
    ) -> list[PassReport]:
        """Read every log; with ``once``, one pass each up to its current tree head.

        Without ``once`` it polls every ``poll_interval`` until cancelled.
        """
        plans = tuple(plans)
        self.prepare()
        reports: list[PassReport] = []
        async with httpx.AsyncClient(http2=True, follow_redirects=False) as client:
            while True:
                await self.refresh_caa()
                reports = list(
                    await asyncio.gather(
                        *(self.pass_log(plan, client, from_start=from_start) for plan in plans)
                    )
                )
                if self.settings.liveness.enabled:
                    await self.recheck_liveness()
                if once:
                    return reports
                await asyncio.sleep(self.settings.poll_interval)

    def _resolver(self) -> dns.asyncresolver.Resolver:
        """The configured DNS server (``ct.dns_server``), else the system's resolvers."""
        resolver = dns.asyncresolver.Resolver()
        if self.settings.dns_server:
            host, _, port = self.settings.dns_server.rpartition(":")
            if not host or not port.isdigit():
                host, port = self.settings.dns_server, "53"
            resolver = dns.asyncresolver.Resolver(configure=False)
            resolver.nameservers = [host]
            resolver.port = int(port)
        return resolver

    async def recheck_liveness(self) -> int:
        """Check the found names that are due (``ct.liveness``); return how many were.

        The iptoasn table is read at the first re-check (not at construction); one that
        cannot be read is said once per pass and the DNS service is used alone.
        """
        settings = self.settings.liveness
        now = self.clock()
        with self.store.read() as connection:
            due = recheck.names_due(
                connection,
                now=now,
                recheck_every=timedelta(seconds=settings.recheck_every),
                until=timedelta(seconds=settings.until),
                limit=settings.max_names_per_pass,
            )
        if not due:
            return 0
        table = self._asn_table()
        resolver = self._resolver()
        source = recheck.AsnSource(
            table=table,
            use_dns=settings.asn_dns,
            resolver=resolver,
            deadline_s=min(5.0, settings.deadline),
        )
        checks = await recheck.check_names(
            due,
            now=now,
            asn=source,
            resolver=resolver,
            port=settings.port,
            deadline_s=settings.deadline,
        )
        with self.store.write() as connection:
            recheck.record_checks(connection, checks)
        live = sum(check.liveness.is_live for check in checks)
        self.log_line(f"liveness: {len(checks)} names checked, {live} live")
        return len(checks)

    def _asn_table(self) -> AsnTable | None:
        path_text = self.settings.liveness.asn_file
        if path_text is None:
            return None
        if self._asn is None:
            path = Path(path_text)
            path = path if path.is_absolute() else self.base_dir / path
            try:
                self._asn = AsnTable.load(path)
            except AsnDataError as exc:
                self.log_line(f"liveness: {exc}; the AS comes from DNS only")
                return None
        return self._asn

    async def pass_log(
        self, plan: TailPlan, client: httpx.AsyncClient, *, from_start: bool
    ) -> PassReport:
        """One pass over one log, committed batch by batch."""
        log = plan.log
        report = PassReport(log=log.description)
        with self.store.read() as connection:
            stored = persist.load_log(connection, log.log_id_b64)
        errors_total = stored.errors_total if stored else 0
        last_error_utc = stored.last_error_utc if stored else None
        last_ts = stored.last_entry_timestamp_ms if stored else None
        if stored is None:
            state = TailState()
            if not from_start:
                started = await self._state_at_end(log, client)
                if isinstance(started, str):
                    state = dataclasses.replace(state, last_error=started)
                    self._save_fault(log, state, errors_total + 1, last_ts, None)
                    report.state = state
                    return report
                state = started
                report.started_at_end = True
                self.log_line(f"{log.description}: new log, starting at its end ({state.position})")
        else:
            state = stored.state
        extra_malformed = 0
        pending: list[Matched] = []
        since_commit = 0
        tail = LogTail(
            log,
            state,
            policy=self.policy,
            stop_at=plan.stop_at,
            client=client,
            issuers=self.issuers,
            lazy_extra=True,
        )
        async with tail:
            prev_ts = last_ts
            async for item in tail.entries():
                if since_commit >= self.settings.commit_every:
                    # tail.state already covers every entry before this one.
                    self._commit(
                        log,
                        tail.state,
                        extra_malformed,
                        pending,
                        report,
                        prev_ts,
                        None,
                        errors_total,
                        last_error_utc,
                    )
                    pending = []
                    since_commit = 0
                since_commit += 1
                report.handled += 1
                if isinstance(item, MalformedEntry):
                    continue
                matched = self._match(item)
                if isinstance(matched, Matched):
                    pending.append(matched)
                    report.matched += 1
                elif matched is False:
                    extra_malformed += 1
                prev_ts = item.entry.timestamp
            final = tail.state
            rate = tail.status().entries_per_second
        if final.last_error:
            errors_total += 1
            last_error_utc = self.clock()
        self._commit(
            log,
            final,
            extra_malformed,
            pending,
            report,
            prev_ts,
            rate,
            errors_total,
            last_error_utc,
        )
        report.state = final
        self._judge_health(log, final, prev_ts, errors_total, stop_at=plan.stop_at)
        return report

    async def _state_at_end(self, log: CtLog, client: httpx.AsyncClient) -> TailState | str:
        """A new log's state at its current verified tree size (or the fault, in words)."""
        fetcher = LogFetcher(log.url, self.policy, client=client)
        try:
            if log.protocol is LogProtocol.STATIC:
                origin = StaticReader.origin_for(log.submission_url)
                checkpoint = await StaticReader(fetcher, log.key, origin=origin).checkpoint()
                size = checkpoint.checkpoint.tree_size
            else:
                size = (await Rfc6962Reader(fetcher, log.key).tree_head()).tree_size
        except CtError as exc:
            return f"starting at the end: {exc}"[:500]
        finally:
            await fetcher.aclose()
        return TailState(position=size)

    def _match(self, entry: LogEntry) -> Matched | bool | None:
        """The entry's match, ``None`` when its names are not watched, ``False`` malformed."""
        try:
            tbs, fields = parse_entry_tbs(entry)
            names = names_from_tbs(tbs, fields)
        except (MalformedEntryError, DecodeError):
            return False
        matches = self.watchlist.match(names.dns_names)
        lookalikes: list[LookalikeMatch] = []
        hits: list[KeywordResult] = []
        if not matches:
            # Hashed lookups, one per candidate suffix or automaton pass per name.
            if self.lookalikes is not None:
                lookalikes = self.lookalikes.match_all(names.dns_names)
            if self.keywords is not None:
                hits = [self.keywords.check(n) for n in names.dns_names if self.keywords.matches(n)]
            if not lookalikes and not hits:
                return None
        try:
            # The chain is decoded only now: most entries never need it.
            entry = complete_entry(entry)
        except MalformedEntryError:
            return False
        try:
            facts = certificate_facts(entry, tbs, fields, names, entry_issuer(entry))
        except DecodeError:
            return False
        return Matched(entry.index, facts, tuple(matches), tuple(lookalikes), tuple(hits))

    # --- the transaction of a batch ------------------------------------------------

    def _commit(
        self,
        log: CtLog,
        state: TailState,
        extra_malformed: int,
        pending: list[Matched],
        report: PassReport,
        last_ts: int | None,
        rate: float | None,
        errors_total: int,
        last_error_utc: datetime | None,
    ) -> None:
        now = self.clock()
        known = set(self._known)
        written: list[dict[str, Any]] = []
        scan_names: list[str] = []
        with self.store.write() as connection:
            persist.save_issuers(connection, self.issuers.take_unsaved(), now)
            policy = self._policy(connection) if pending else WatchPolicy()
            for matched in pending:
                facts = matched.facts
                existing = persist.existing_finding(connection, facts)
                if existing is not None:
                    finding_id, relation = existing
                    persist.insert_sighting(
                        connection,
                        finding_id,
                        facts,
                        log=log,
                        index=matched.index,
                        relation=relation,
                        now=now,
                    )
                    continue
                verdicts = judge(
                    facts,
                    matched.matches,
                    policy=policy,
                    known_names=known,
                    now=now,
                    lookalikes=matched.lookalikes,
                    keyword_hits=matched.keyword_hits,
                )
                fresh = new_names(matched.matches, known)
                details = self._details(connection, facts, log, matched.index)
                finding_id = persist.insert_finding(
                    connection,
                    facts,
                    watched=(m.watched for m in matched.matches),
                    kinds=(v.kind.value for v in verdicts),
                    details=details,
                    log=log,
                    index=matched.index,
                    now=now,
                )
                persist.add_known_names(connection, fresh, source="ct", now=now)
                known.update(fresh)
                scan_names += [n for n, d in fresh.items() if d in self._scan_domains]
                events = [self._event(v, facts, now) for v in verdicts]
                self.engine.apply_unbound_in(
                    connection, events, now, details={**details, "finding_id": finding_id}
                )
                report.new_findings += 1
                report.alerts += len(events)
                written += [
                    {
                        "kind": e.kind.value,
                        "severity": e.severity.value,
                        "title": e.title,
                        "message": e.message,
                        "finding_id": finding_id,
                        **details,
                    }
                    for e in events
                ]
            saved = dataclasses.replace(state, malformed=state.malformed + extra_malformed)
            persist.save_log(
                connection,
                log,
                saved,
                now=now,
                last_entry_timestamp_ms=last_ts,
                errors_total=errors_total,
                last_error_utc=last_error_utc,
                entries_per_second=rate,
            )
        self._known = known
        self._after_commit(written, scan_names, now)

    def _details(
        self, connection: Connection, facts: CertFacts, log: CtLog, index: int
    ) -> dict[str, Any]:
        details: dict[str, Any] = {
            "sha256": facts.sha256_hex,
            "serial": facts.serial_hex,
            "issuer": facts.issuer,
            "names": list(facts.names),
            "precertificate": facts.is_precert,
            "log": log.description,
            "log_id": log.log_id_b64,
            "index": index,
            "not_after": facts.not_after_utc.isoformat() if facts.not_after_utc else None,
        }
        if any(name.startswith("*.") for name in facts.names):
            details["deployed_at"] = deployed_at(connection, facts)
        return details

    def _event(self, verdict: CtVerdict, facts: CertFacts, now: datetime) -> AlertEvent:
        return AlertEvent(
            action=EventAction.OPEN if verdict.stays_open else EventAction.NOTIFY,
            kind=AlertKind(verdict.kind.value),
            dedup_key=_dedup_key(verdict.kind.value, verdict.subject),
            severity=verdict.severity,
            endpoint=", ".join(facts.names[:3]),
            title=verdict.title,
            message=verdict.message,
            occurred_at_utc=now,
        )

    def _after_commit(
        self, written: list[dict[str, Any]], scan_names: list[str], now: datetime
    ) -> None:
        if written and self.settings.alert_files is not None:
            write_alert_files(self._path(self.settings.alert_files), written, now)
        if scan_names and self.settings.new_names_file is not None:
            append_scan_targets(self._path(self.settings.new_names_file), scan_names)

    def _path(self, text: str) -> Path:
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    # --- health of a log -------------------------------------------------------------

    def _save_fault(
        self,
        log: CtLog,
        state: TailState,
        errors_total: int,
        last_ts: int | None,
        rate: float | None,
    ) -> None:
        now = self.clock()
        with self.store.write() as connection:
            persist.save_log(
                connection,
                log,
                state,
                now=now,
                last_entry_timestamp_ms=last_ts,
                errors_total=errors_total,
                last_error_utc=now,
                entries_per_second=rate,
            )
        self._judge_health(log, state, last_ts, errors_total, stop_at=None)

    def _judge_health(
        self,
        log: CtLog,
        state: TailState,
        last_ts: int | None,
        errors_total: int,
        *,
        stop_at: int | None,
    ) -> None:
        now = self.clock()
        events: list[AlertEvent] = []
        name = log.description

        def event(
            kind: AlertKind, severity: Severity, holds: bool, title: str, message: str
        ) -> None:
            events.append(
                AlertEvent(
                    action=EventAction.OPEN if holds else EventAction.RESOLVE,
                    kind=kind,
                    dedup_key=_dedup_key(kind.value, log.log_id_b64),
                    severity=severity,
                    endpoint=name,
                    title=title,
                    message=message if holds else f"{name} is read again without fault.",
                    occurred_at_utc=now,
                )
            )

        fault = state.last_error_kind not in ("", "FetchError") and bool(state.last_error)
        if fault or not state.last_error:
            event(
                AlertKind.CT_LOG_FAULT,
                Severity.CRITICAL,
                fault,
                f"CT: log {name} serves data its tree or key contradicts",
                state.last_error,
            )
        stalled = (state.last_success is None and errors_total >= 3) or (
            state.last_success is not None
            and (now - state.last_success).total_seconds() > self.settings.stalled_after
        )
        if stalled or not state.last_error:
            event(
                AlertKind.CT_LOG_STALLED,
                Severity.WARNING,
                stalled,
                f"CT: log {name} stalled",
                f"{name} has not been read successfully since "
                f"{state.last_success.isoformat() if state.last_success else 'the watch began'}"
                f": {state.last_error or 'no error recorded'}",
            )
        lag = backlog_seconds(state, last_ts, stop_at=stop_at)
        behind = lag is not None and lag > self.settings.behind_after
        event(
            AlertKind.CT_LOG_BEHIND,
            Severity.WARNING,
            behind,
            f"CT: log {name} is behind",
            f"{name}: the oldest unread entry is {lag or 0:.0f} s older than its tree head.",
        )
        with self.store.write() as connection:
            self.engine.apply_unbound_in(
                connection, events, now, details={"log": name, "log_id": log.log_id_b64}
            )


def backlog_entries(state: TailState, *, stop_at: int | None = None) -> int | None:
    """Entries in the verified tree not yet processed (``None``: never read)."""
    if state.tree_size is None:
        return None
    end = state.tree_size if stop_at is None else min(state.tree_size, stop_at)
    return max(0, end - state.position)


def backlog_seconds(
    state: TailState, last_ts: int | None, *, stop_at: int | None = None
) -> float | None:
    """How much older than the tree head the first unread entry is, in seconds.

    ``0`` without a backlog; ``None`` when unknown (no entry read yet).
    """
    entries = backlog_entries(state, stop_at=stop_at)
    if entries is None:
        return None
    if entries == 0:
        return 0.0
    if last_ts is None or not state.head_timestamp:
        return None
    return max(0.0, (state.head_timestamp - last_ts) / 1000)


def deployed_at(connection: Connection, facts: CertFacts) -> list[str]:
    """Where the inventory saw this certificate served (``host:port``), by serial and issuer.

    A precertificate has another fingerprint than its final certificate, so the
    certificate is found by serial number and issuer, as both carry the same.
    """
    c, d, e = CERTIFICATES.c, DEPLOYMENTS.c, ENDPOINTS.c
    rows = connection.execute(
        select(e.host, e.port, c.issuer, c.issuer_cn)
        .select_from(
            CERTIFICATES.join(DEPLOYMENTS, d.certificate_sha256 == c.sha256_hex).join(
                ENDPOINTS, e.id == d.endpoint_id
            )
        )
        .where(c.serial_hex == facts.serial_hex)
        .order_by(e.host, e.port)
    ).all()
    wanted = {ca_identity(facts.issuer), ca_identity(facts.issuer_cn)}
    return sorted(
        {
            f"{r.host}:{r.port}"
            for r in rows
            if {ca_identity(r.issuer), ca_identity(r.issuer_cn or "")} & wanted
        }
    )


def write_alert_files(directory: Path, alerts: list[dict[str, Any]], now: datetime) -> None:
    """Write each alert as one JSON file (written whole, then renamed into place)."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    for number, alert in enumerate(alerts):
        name = f"{stamp}-{alert['finding_id']}-{number}-{alert['kind']}.json"
        temporary = directory / f".{name}.tmp"
        temporary.write_text(json.dumps(alert, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(temporary, directory / name)


def append_scan_targets(path: Path, names: Iterable[str]) -> None:
    """Append new names to a ``target_file`` source (one ``host`` per line), each once."""
    existing: set[str] = set()
    if path.exists():
        existing = {line.strip() for line in path.read_text(encoding="utf-8").splitlines()}
    fresh = [n for n in dict.fromkeys(names) if n not in existing and not n.startswith("*.")]
    if fresh:
        with path.open("a", encoding="utf-8") as handle:
            handle.writelines(f"{name}\n" for name in fresh)

"""The CT watch over local logs playing Navigli2025h2's real entries: what it records,
dedups and alerts, how it resumes, and how log faults reach ``ct status`` and alerts."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from sqlalchemy import select

from certvigil.alerts.engine import AlertEngine
from certvigil.config.ct import CtSettings
from certvigil.ct.fetch.http import FetchPolicy
from certvigil.ct.log_list import TailPlan
from certvigil.ct.names import entry_dedup_keys, entry_issuer, entry_names, parse_entry_tbs
from certvigil.ct.static_ct import checkpoint_origin, data_tile, parse_data_tile
from certvigil.ct.watch import persist
from certvigil.ct.watch.logs import configured_log
from certvigil.ct.watch.runner import CtWatch, PassReport
from certvigil.store import Store
from certvigil.store.ct_models import CT_ISSUERS
from certvigil.store.models import ALERTS
from certvigil.targets.target import Target
from tests.store.factories import facts, ok_report
from tests.support.ct_log_server import (
    NAVIGLI,
    NAVIGLI_ROOTS,
    CtLogServer,
    EntriesLog,
    Fault,
    TestLogKey,
    entries_root,
    navigli_files,
    navigli_rfc6962_entries,
    synthetic_static_log,
)
from tests.support.dns_server import LoopbackDns

FAST = FetchPolicy(deadline=5.0, retries=2, backoff_base=0.01, backoff_cap=0.05)
EARLY = datetime(2025, 5, 10, tzinfo=UTC)
"""A week after Navigli's certificates were issued (they expire 2025-08-01)."""
LATE = datetime(2025, 7, 28, tzinfo=UTC)
"""Four days before they expire."""
DOMAINS = ("cynova.dev", "chixbbq.org", "nip.io", "drive-platform.io")
STAGING_CAS = (
    "(STAGING) Counterfeit Cashew R10",
    "(STAGING) False Fennel E6",
    "(STAGING) Pseudo Plum E5",
    "(STAGING) Wannabe Watercress R11",
)
"""The commonNames of the Let's Encrypt staging CAs that issued Navigli's certificates."""
ISSUERS = {bytes.fromhex(p.name): p.read_bytes() for p in (NAVIGLI / "issuer").iterdir()}


def issuer_dn(entry: Any) -> str:
    """The RFC 4514 DN of the CA that issued a Navigli entry (from the real issuers)."""
    der = entry_issuer(entry, [ISSUERS[f] for f in entry.chain_fingerprints])
    assert der is not None
    return x509.load_der_x509_certificate(der).subject.rfc4514_string()


def navigli_entries() -> list[Any]:
    files = navigli_files(1024)
    return [
        e
        for i in range(4)
        for e in parse_data_tile(files[f"tile/data/00{i}"], data_tile(i)).entries
    ]


def renewal_groups(indices: Any) -> int:
    """How many distinct (issuer, set of names) the entries at ``indices`` hold."""
    wanted = set(indices)
    return len(
        {
            (parse_entry_tbs(e)[1].issuer, tuple(sorted(entry_names(e).dns_names)))
            for e in navigli_entries()
            if e.index in wanted
        }
    )


def expected_matches(domains: tuple[str, ...]) -> dict[int, tuple[str, ...]]:
    """Reference: index → names of Navigli's entries under ``domains`` (by string suffix)."""
    found: dict[int, tuple[str, ...]] = {}
    for entry in navigli_entries():
        names = entry_names(entry).dns_names
        if any(n.removeprefix("*.") == d or n.endswith("." + d) for n in names for d in domains):
            found[entry.index] = names
    return found


class Logs:
    """A local server playing a static log (``/static/``) and an RFC 6962 log (``/rfc/``)."""

    def __init__(self, server: CtLogServer) -> None:
        self.server = server
        self.key = TestLogKey()
        self.rfc_key = TestLogKey()
        self.static = server.site("static")
        self.rfc = server.site("rfc")

    def publish_static(self, size: int) -> None:
        """Navigli's real tiles with a checkpoint for 778 or 1024 entries."""
        self.static.files.update(navigli_files(size))
        origin = checkpoint_origin(self.server.url("static"))
        self.static.files["checkpoint"] = self.key.checkpoint(origin, size, NAVIGLI_ROOTS[size])

    def publish_synthetic(self, size: int) -> None:
        """Navigli's leaves repeated to ``size`` entries (each certificate every 1024)."""
        files, root = synthetic_static_log(size)
        self.static.files.update(files)
        origin = checkpoint_origin(self.server.url("static"))
        self.static.files["checkpoint"] = self.key.checkpoint(origin, size, root)

    def publish_rfc(self, count: int) -> None:
        """The same certificates as an RFC 6962 log of ``count`` entries."""
        entries = navigli_rfc6962_entries(count)
        self.rfc.entries = EntriesLog(0, entries, max_per_answer=100)
        self.rfc.files["ct/v1/get-sth"] = self.rfc_key.sth(count, entries_root(entries))

    def settings(self, *, rfc: bool = False, **extra: Any) -> CtSettings:
        key = base64.b64encode(self.key.der).decode()
        logs: list[dict[str, Any]] = [
            {"monitoring_url": self.server.url("static"), "description": "Static", "key": key}
        ]
        if rfc:
            rfc_key = base64.b64encode(self.rfc_key.der).decode()
            logs.append({"url": self.server.url("rfc"), "description": "Rfc", "key": rfc_key})
        document: dict[str, Any] = {
            "use_log_list": False,
            "logs": logs,
            "domains": [{"name": d} for d in DOMAINS],
            "commit_every": 100,
            "caa": False,  # no DNS unless a test serves it on loopback
            **extra,
        }
        return CtSettings.model_validate(document)


@pytest.fixture
def logs() -> Iterator[Logs]:
    """A running local log server."""
    with CtLogServer() as server:
        yield Logs(server)


def watch(
    settings: CtSettings,
    store: Store,
    *,
    now: datetime = EARLY,
    from_start: bool = True,
    base_dir: Path | None = None,
) -> list[PassReport]:
    """One ``ct watch --once`` pass over every configured log."""
    runner = CtWatch(
        settings,
        store,
        AlertEngine(store),
        base_dir=base_dir or Path("."),
        clock=lambda: now,
        policy=FAST,
        log_line=lambda _text: None,
    )
    plans = [TailPlan(configured_log(log), None) for log in settings.logs]
    return asyncio.run(runner.run(plans, once=True, from_start=from_start))


def sightings(store: Store) -> list[tuple[str, int]]:
    with store.read() as connection:
        return persist.sighting_entries(connection)


def alerts(store: Store) -> list[Any]:
    with store.read() as connection:
        return list(connection.execute(select(ALERTS).order_by(ALERTS.c.id)))


def findings(store: Store) -> tuple[persist.FindingRecord, ...]:
    with store.read() as connection:
        return persist.list_findings(connection)


def test_a_pass_records_every_matching_entry_once_with_its_kinds(logs: Logs, store: Store) -> None:
    """Every entry under a watched domain is a finding, seen once; the rest are not."""
    logs.publish_static(1024)
    expected = expected_matches(DOMAINS)

    (report,) = watch(logs.settings(), store)

    assert report.handled == 1024
    assert report.matched == len(expected) > 100
    assert sorted(index for _, index in sightings(store)) == sorted(expected)
    found = findings(store)
    # A renewal (same names, same CA) is a sighting of the first finding.
    assert len(found) == renewal_groups(expected) < len(expected)
    assert {f.entry_index: f.names for f in found}.items() <= expected.items()
    later = sorted(i for f in found for _, i, relation in f.sightings if relation == "renewal")
    assert sorted([f.entry_index for f in found] + later) == sorted(expected)
    by_index = {e.index: e for e in navigli_entries()}
    assert all(f.issuer == issuer_dn(by_index[f.entry_index]) for f in found)
    first = found[0]
    assert first.is_precert and len(first.sha256_hex) == 64 and first.serial_hex
    assert "new_subdomain" in first.kinds
    wildcard = next(f for f in found if any(n.startswith("*.") for n in f.names))
    assert "wildcard_certificate" in wildcard.kinds
    # No authorised CAs configured: the issuer is not judged; nothing expires soon.
    assert not any({"unauthorized_ca", "certificate_expiring"} & set(f.kinds) for f in found)


def test_known_names_are_not_new_and_new_names_alert_once(logs: Logs, store: Store) -> None:
    """A configured known name raises no new_subdomain; every other name raises one, once."""
    logs.publish_static(1024)
    expected = expected_matches(("cynova.dev",))
    names = sorted({n for ns in expected.values() for n in ns if n.endswith("cynova.dev")})
    known = names[0]
    settings = logs.settings().model_copy(
        update={
            "domains": (
                CtSettings.model_validate(
                    {"domains": [{"name": "cynova.dev", "known_names": [known]}]}
                ).domains
            )
        }
    )

    watch(settings, store)

    new = [a for a in alerts(store) if a.kind == "new_subdomain"]
    announced = sorted(a.details["message"].split(" ")[0] for a in new)
    assert known not in announced
    assert len(announced) == len(set(announced))
    assert set(announced) == {n.removeprefix("*.") for n in names} - {known}


def test_an_issuer_outside_the_authorised_set_opens_a_critical_alert(
    logs: Logs, store: Store
) -> None:
    """unauthorized_ca opens (critical) for a domain whose CAs exclude the issuer; a
    domain that authorises it by commonName raises none."""
    logs.publish_static(1024)
    settings = CtSettings.model_validate(
        {
            **logs.settings().model_dump(by_alias=True, exclude={"domains"}),
            "domains": [
                {"name": "cynova.dev", "authorized_cas": [ca.lower() for ca in STAGING_CAS]},
                {"name": "chixbbq.org", "authorized_cas": ["CN=Some Other CA,O=Elsewhere"]},
            ],
        }
    )

    watch(settings, store)

    unauthorised = [a for a in alerts(store) if a.kind == "unauthorized_ca"]
    assert unauthorised
    assert all(a.severity == "critical" and a.state == "open" for a in unauthorised)
    assert all("chixbbq.org" in a.summary for a in unauthorised)
    assert len(unauthorised) == renewal_groups(expected_matches(("chixbbq.org",)))


def test_a_stored_authorisation_counts_like_a_configured_one(logs: Logs, store: Store) -> None:
    """A stored authorisation (ct authorize-ca) by the issuer's DN, written with spaces,
    silences unauthorized_ca for that CA only."""
    logs.publish_static(1024)
    settings = CtSettings.model_validate(
        {
            **logs.settings().model_dump(by_alias=True, exclude={"domains"}),
            "domains": [{"name": "chixbbq.org", "authorized_cas": ["CN=Other"]}],
        }
    )
    with store.write() as connection:
        persist.add_authorized_ca(
            connection,
            domain="chixbbq.org",
            ca="CN=(STAGING) False Fennel E6, O=(STAGING) Let's Encrypt, C=US",
            source="manual",
            now=EARLY,
        )

    watch(settings, store)

    by_index = {e.index: e for e in navigli_entries()}
    flagged = {f.entry_index for f in findings(store) if "unauthorized_ca" in f.kinds}
    assert flagged
    assert {issuer_dn(by_index[i]).split(",")[0] for i in flagged} == {
        "CN=(STAGING) Pseudo Plum E5"
    }


def test_expiring_and_short_lived_certificates_are_reported(logs: Logs, store: Store) -> None:
    """Four days before expiry every match is expiring; 89-day certificates are short-lived
    under a 90-day threshold."""
    logs.publish_static(1024)

    watch(logs.settings(short_lived_under="90d"), store, now=LATE)

    found = findings(store)
    assert found
    assert all({"certificate_expiring", "short_lived_certificate"} <= set(f.kinds) for f in found)
    expiring = [a for a in alerts(store) if a.kind == "certificate_expiring"]
    assert len(expiring) == len(found) and all(a.state == "open" for a in expiring)


def test_the_same_certificates_in_another_log_and_again_are_sightings(
    logs: Logs, store: Store
) -> None:
    """The same precertificates in an RFC 6962 log and repeated in a static log are
    recorded as sightings of the first finding and alert nothing more."""
    logs.publish_synthetic(2048)  # Navigli's 1024 leaves twice
    logs.publish_rfc(256)  # the first 256 again, in another log
    expected = expected_matches(DOMAINS)

    watch(logs.settings(rfc=True), store)

    found = findings(store)
    assert len(found) == renewal_groups(expected)
    assert len({f.sha256_hex for f in found}) == len(found)
    seen = sightings(store)
    assert len(seen) == len(set(seen))
    static_id = configured_log(logs.settings().logs[0]).log_id_b64
    assert sorted(i for log, i in seen if log == static_id) == sorted(
        [*expected, *(i + 1024 for i in expected)]
    )
    rfc_indices = sorted(i for log, i in seen if log != static_id)
    assert rfc_indices == sorted(i for i in expected if i < 256)
    relations = {r for f in found for _, _, r in f.sightings}
    assert relations == {"same_certificate", "renewal"}
    keys = [a.dedup_key for a in alerts(store)]
    assert len(keys) == len(set(keys))


def test_dedup_keys_of_an_entry_match_its_finding(logs: Logs, store: Store) -> None:
    """A finding's dedup keys are those of its entry (cross-checked with names.py)."""
    logs.publish_static(1024)

    watch(logs.settings(), store)

    by_index = {e.index: e for e in navigli_entries()}
    with store.read() as connection:
        from certvigil.store.ct_models import CT_FINDINGS

        rows = connection.execute(select(CT_FINDINGS)).all()
    for row in rows[:20]:
        keys = entry_dedup_keys(by_index[row.entry_index])
        assert (row.issuer_serial_key, row.tbs_key) == (keys.issuer_serial.hex(), keys.tbs.hex())


def test_a_new_log_starts_at_its_end_and_reads_what_it_grows_by(logs: Logs, store: Store) -> None:
    """Without --from-start a new log starts at its tree size; once it grows from 778 to
    1024 entries, the next pass reads exactly the 246 new ones."""
    logs.publish_static(778)
    settings = logs.settings()

    (first,) = watch(settings, store, from_start=False)
    assert first.started_at_end and first.handled == 0
    assert first.state.position == 778 and sightings(store) == []

    logs.publish_static(1024)
    (second,) = watch(settings, store, from_start=False)

    assert second.handled == 1024 - 778 and second.state.position == 1024
    expected = sorted(i for i in expected_matches(DOMAINS) if i >= 778)
    assert sorted(i for _, i in sightings(store)) == expected


def test_a_pass_cut_by_a_failing_log_resumes_without_gap_or_repeat(
    logs: Logs, store: Store
) -> None:
    """A log that fails past its retries mid-way ends the pass at a committed position;
    the next pass reads on from there: every matching entry is seen exactly once."""
    logs.publish_static(1024)
    logs.server.inject(Fault("tile/data/002", 503, count=100, retry_after="0"))
    settings = logs.settings()

    (cut,) = watch(settings, store)
    assert "503" in cut.state.last_error
    assert 0 < cut.state.position <= 512
    with store.read() as connection:
        stored = persist.load_log(connection, configured_log(settings.logs[0]).log_id_b64)
    assert stored is not None and stored.state.position == cut.state.position
    assert stored.errors_total == 1

    logs.server.faults.clear()
    (rest,) = watch(settings, store)

    assert rest.state.last_error == "" and rest.state.position == 1024
    seen = [i for _, i in sightings(store)]
    assert sorted(seen) == sorted(expected_matches(DOMAINS))
    assert len(seen) == len(set(seen))


def test_a_wrong_tile_is_a_log_fault_in_status_and_an_alert(logs: Logs, store: Store) -> None:
    """A data tile with one changed byte ends the pass with a TileError, recorded in the
    log's state and raised as a critical ct_log_fault; a clean pass resolves it."""
    logs.publish_static(1024)
    good = logs.static.files["tile/data/001"]
    logs.static.files["tile/data/001"] = good[:100] + bytes([good[100] ^ 1]) + good[101:]
    settings = logs.settings()

    (bad,) = watch(settings, store)

    assert bad.state.last_error_kind == "TileError"
    assert bad.state.position == 256  # nothing of the bad tile is handed out
    with store.read() as connection:
        (stored,) = persist.list_logs(connection)
    assert "tile/data/001" in stored.state.last_error or "tile/0/001" in stored.state.last_error
    (fault,) = [a for a in alerts(store) if a.kind == "ct_log_fault"]
    assert fault.severity == "critical" and fault.state == "open"

    logs.static.files["tile/data/001"] = good
    watch(settings, store)

    (fault,) = [a for a in alerts(store) if a.kind == "ct_log_fault"]
    assert fault.state == "resolved"


def test_a_bad_checkpoint_signature_is_a_log_fault(logs: Logs, store: Store) -> None:
    """A checkpoint signed by another key is refused and alerted as a fault."""
    logs.publish_static(1024)
    settings = logs.settings()
    origin = checkpoint_origin(logs.server.url("static"))
    logs.static.files["checkpoint"] = TestLogKey().checkpoint(origin, 1024, NAVIGLI_ROOTS[1024])

    (report,) = watch(settings, store)

    assert report.handled == 0 and report.state.last_error_kind in (
        "SignatureError",
        "CheckpointError",
    )
    assert [a.kind for a in alerts(store)] == ["ct_log_fault"]


def test_an_unreachable_log_is_not_a_fault_and_stalls_after_three_failures(
    logs: Logs, store: Store
) -> None:
    """A log that answers 503 past its retries is an error, not a fault; after three
    failed passes without a success it raises ct_log_stalled."""
    logs.publish_static(1024)
    logs.server.inject(Fault("checkpoint", 503, count=1000, retry_after="0"))
    settings = logs.settings()

    for _ in range(2):
        watch(settings, store)
    assert alerts(store) == []
    watch(settings, store)

    assert [(a.kind, a.state) for a in alerts(store)] == [("ct_log_stalled", "open")]


def test_throttling_and_gzip_are_weathered(logs: Logs, store: Store) -> None:
    """429 and 503 answers with Retry-After, then gzip on every answer: the pass is clean."""
    logs.publish_static(1024)
    logs.server.gzip = True
    logs.server.inject(Fault("tile/data/000", 429, count=1, retry_after="0"))
    logs.server.inject(Fault("checkpoint", 503, count=1, retry_after="0"))

    (report,) = watch(logs.settings(), store)

    assert report.state.last_error == "" and report.handled == 1024
    assert len(findings(store)) == renewal_groups(expected_matches(DOMAINS))


def test_an_rfc6962_log_answering_short_batches_is_read_whole(logs: Logs, store: Store) -> None:
    """get-entries answering 100 at a time for batches of 1000: every entry once."""
    logs.publish_rfc(1024)
    both = logs.settings(rfc=True)
    settings = both.model_copy(update={"logs": both.logs[1:]})

    (report,) = watch(settings, store)

    assert report.handled == 1024 and report.state.last_error == ""
    assert sorted(i for _, i in sightings(store)) == sorted(expected_matches(DOMAINS))


def test_alert_files_and_new_names_for_the_scanner_are_written(
    logs: Logs, store: Store, tmp_path: Path
) -> None:
    """Each alert is a JSON file; new names of a scan_new_names domain join a target file."""
    logs.publish_static(1024)
    settings = CtSettings.model_validate(
        {
            **logs.settings().model_dump(by_alias=True, exclude={"domains"}),
            "domains": [{"name": "cynova.dev", "scan_new_names": True}, {"name": "nip.io"}],
            "alert_files": "alerts",
            "new_names_file": "ct-targets.txt",
        }
    )

    watch(settings, store, base_dir=tmp_path)

    files = sorted((tmp_path / "alerts").glob("*.json"))
    assert len(files) == len(alerts(store))
    document = json.loads(files[0].read_text())
    assert {"kind", "severity", "sha256", "serial", "issuer", "names", "log", "index"} <= set(
        document
    )
    targets = (tmp_path / "ct-targets.txt").read_text().splitlines()
    assert targets and all(t.endswith(".cynova.dev") and not t.startswith("*") for t in targets)
    assert len(targets) == len(set(targets))


def test_a_wildcard_seen_in_ct_is_located_in_the_inventory(logs: Logs, store: Store) -> None:
    """A wildcard certificate whose serial and issuer the inventory serves names where."""
    logs.publish_static(1024)
    wildcard = next(e for e in navigli_entries() if entry_names(e).dns_names[0].startswith("*."))
    _, fields = parse_entry_tbs(wildcard)
    leaf = dataclasses.replace(
        facts("gated.example", not_after_utc=LATE),
        serial_hex=fields.serial.lstrip(b"\x00").hex(),
        issuer=issuer_dn(wildcard),
    )
    store.record_report(ok_report(Target(host="edge.drive-platform.io", port=8443), (leaf,)))

    watch(logs.settings(), store)

    (alert,) = [
        a
        for a in alerts(store)
        if a.kind == "wildcard_certificate" and a.details["index"] == wildcard.index
    ]
    assert alert.details["deployed_at"] == ["edge.drive-platform.io:8443"]


def test_look_alikes_typos_and_keywords_are_alerted(logs: Logs, store: Store) -> None:
    """Watching cyn0va.dev, the real cynova.dev names look alike (homoglyph); watching
    nip.com, nip.io names are a typo (TLD swap); keywords chix and bbq catch chixbbq.org."""
    logs.publish_static(1024)
    settings = CtSettings.model_validate(
        {
            **logs.settings().model_dump(by_alias=True, exclude={"domains", "keywords"}),
            "domains": [{"name": "cyn0va.dev"}, {"name": "nip.com"}],
            "keywords": {"search": ["chix", "bbq"], "threshold": 2},
        }
    )

    watch(settings, store)

    by_kind: dict[str, set[str]] = {}
    for alert in alerts(store):
        by_kind.setdefault(alert.kind, set()).add(alert.summary.split(" ")[1])
    assert {n.split(".")[-2] for n in by_kind["lookalike_detected"]} == {"cynova", "chixbbq"}
    assert by_kind["typosquat_detected"] == {"nip.io"}
    assert "new_subdomain" not in by_kind
    imitating = expected_matches(("cynova.dev", "chixbbq.org", "nip.io"))
    flagged = {f.entry_index for f in findings(store)}
    assert flagged <= set(imitating) and len(flagged) == renewal_groups(imitating)


def test_caa_records_authorise_the_cas_they_name(logs: Logs, store: Store) -> None:
    """chixbbq.org's CAA allows only DigiCert, so its Let's Encrypt certificates are
    unauthorised; cynova.dev's allows Let's Encrypt: no alert; the lookups went to the
    loopback DNS server."""
    logs.publish_static(1024)
    with LoopbackDns() as dns:
        dns.caa["chixbbq.org"] = ['0 issue "digicert.com"']
        dns.caa["cynova.dev"] = ['0 issue "letsencrypt.org"']
        dns.names.update({"nip.io", "drive-platform.io"})
        settings = logs.settings(caa=True, dns_server=f"127.0.0.1:{dns.port}")

        watch(settings, store)

        assert {"chixbbq.org", "cynova.dev"} <= set(dns.queries)
    unauthorised = [a for a in alerts(store) if a.kind == "unauthorized_ca"]
    assert unauthorised and all("chixbbq.org" in a.summary for a in unauthorised)
    assert len(unauthorised) == renewal_groups(expected_matches(("chixbbq.org",)))


def test_a_tree_head_that_does_not_extend_the_last_is_a_log_fault(logs: Logs, store: Store) -> None:
    """An RFC 6962 log grows from 300 to 600 entries but its consistency proof does not
    verify: a critical ct_log_fault, the error in the log's stored state (what `ct
    status` shows), and nothing past 300 read; an honest proof later resolves it."""
    logs.publish_rfc(300)
    settings = logs.settings(rfc=True)
    watch(settings, store)
    logs.publish_rfc(600)
    logs.rfc.forge_consistency = True

    reports = watch(settings, store)

    (rfc,) = [r for r in reports if r.log == "Rfc"]
    assert rfc.handled == 0 and rfc.state.position == 300
    with store.read() as connection:
        (stored,) = [log for log in persist.list_logs(connection) if "rfc" in log.url]
    assert "consistency proof from 300 to 600 entries does not verify" in stored.state.last_error
    (fault,) = [a for a in alerts(store) if a.kind == "ct_log_fault"]
    assert fault.severity == "critical" and fault.state == "open"

    logs.rfc.forge_consistency = False
    (_, rfc_again) = watch(settings, store)

    assert rfc_again.state.position == 600 and rfc_again.state.last_error == ""
    (fault,) = [a for a in alerts(store) if a.kind == "ct_log_fault"]
    assert fault.state == "resolved"


def test_static_issuers_are_kept_in_the_store_and_never_fetched_again(
    logs: Logs, store: Store
) -> None:
    """Two separate watch runs (778, then 1,024 entries): each issuer is fetched once in
    all, the second run taking them from the store; a stored row that is not the
    certificate its key names is not used."""
    logs.publish_static(778)
    settings = logs.settings()
    watch(settings, store)
    with store.read() as connection:
        kept = persist.load_issuers(connection, 100)
    assert kept and all(hashlib.sha256(der).digest() == fp for fp, der in kept.items())
    logs.publish_static(1024)

    (second,) = watch(settings, store)

    assert second.state.position == 1024 and second.state.last_error == ""
    assert all(logs.server.count(f"issuer/{fp.hex()}") == 1 for fp in kept)
    with store.read() as connection:
        assert persist.load_issuers(connection, 100) == kept


def test_a_damaged_stored_issuer_is_fetched_again(logs: Logs, store: Store) -> None:
    """Kept issuers whose bytes no longer hash to their key are ignored, fetched anew
    when an entry needs them, and the rows repaired."""
    logs.publish_static(778)
    settings = logs.settings()
    watch(settings, store)
    with store.write() as connection:
        kept = persist.load_issuers(connection, 100)
        connection.execute(CT_ISSUERS.update().values(der=b"\x30\x00"))
    logs.publish_static(1024)

    (second,) = watch(settings, store)

    assert second.state.last_error == ""
    assert any(logs.server.count(f"issuer/{fp.hex()}") == 2 for fp in kept)
    with store.read() as connection:
        repaired = persist.load_issuers(connection, 100)
    assert all(
        hashlib.sha256(der).digest() == fp for fp, der in repaired.items() if der != b"\x30\x00"
    )
    assert any(der != b"\x30\x00" for der in repaired.values())

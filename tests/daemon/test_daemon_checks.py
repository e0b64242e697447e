"""The daemon with its default checks: revocation, weak protocols and grade drops raise
alerts on loopback servers, and each resolves when the server is fixed."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certvigil.config import load_config
from certvigil.config.expand import expand_targets
from certvigil.daemon.runner import Daemon
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import ServedChain, TlsServer, server_context
from certvigil.scan.options import ScanOptions
from certvigil.store import Store
from tests.daemon.helpers import write_config
from tests.support.ocsp_responder import GOOD, OcspResponder, RevocationServer, Revoked, build_crl

DAY_S = 86400.0


class SteppedClock:
    """A monotonic clock the test moves: cycles that far apart find the daily checks due."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s

    def advance(self, seconds: float) -> None:
        self.now_s += seconds


def utc_now() -> datetime:
    return datetime.now(UTC)


def open_alerts(store: Store) -> dict[str, str]:
    """Active alerts, kind to summary."""
    return {a.kind: a.summary for a in store.list_alerts() if a.state.value != "resolved"}


class Cycles:
    """A daemon whose cycles run one at a time on one event loop (as ``run`` runs them)."""

    def __init__(self, config: Path, store: Store, clock: SteppedClock) -> None:
        loaded = load_config(config)
        options = ScanOptions(retries=0, fetch_missing_issuers=False)
        self.daemon = Daemon(
            loaded,
            expand_targets(loaded).targets,
            store=store,
            scan_options=options,
            monotonic=clock,
        )
        self.loop = asyncio.new_event_loop()

    def run(self) -> None:
        self.loop.run_until_complete(self.daemon.run_cycle())

    def close(self) -> None:
        self.loop.close()


@contextmanager
def cycles(config: Path, store: Store, clock: SteppedClock) -> Iterator[Cycles]:
    running = Cycles(config, store, clock)
    try:
        yield running
    finally:
        running.close()


def test_revoked_certificate_alerts_and_resolves_when_replaced(
    tmp_path: Path, pki: ThrowawayPki, store: Store
) -> None:
    """A revoked leaf (OCSP and CRL agree) opens a critical "revoked" alert; serving a new
    certificate resolves it. The CRL is fetched once however many cycles ask."""
    responder = OcspResponder(issuer=pki.intermediate.issued, clock=utc_now)
    with ExitStack() as stack, RevocationServer(responder=responder) as revocation:

        def issue() -> IssuedCert:
            return pki.issue_leaf(
                dns_names=("localhost",),
                ip_addresses=("127.0.0.1",),
                ocsp_urls=[revocation.url("/ocsp")],
                crl_urls=[revocation.url("/int.crl")],
            )

        revoked, replacement = issue(), issue()
        when = utc_now() - timedelta(days=1)
        responder.statuses[revoked.certificate.serial_number] = Revoked(revoked_at_utc=when)
        responder.statuses[replacement.certificate.serial_number] = GOOD
        revocation.files["/int.crl"] = build_crl(
            issuer=pki.intermediate.issued,
            this_update_utc=utc_now() - timedelta(hours=1),
            next_update_utc=utc_now() + timedelta(days=7),
            revoked=[(revoked.certificate.serial_number, Revoked(revoked_at_utc=when))],
        )
        tls = TlsServer(chain=pki.served_chain_der(revoked), key_pem=revoked.key_pem)
        with tls as server:
            config = write_config(
                tmp_path,
                root_pem=pki.root.pem,
                endpoints=[("localhost", server.port, None)],
                default_checks=True,
            )
            clock = SteppedClock()
            daemon = stack.enter_context(cycles(config, store, clock))
            daemon.run()
            alerts = open_alerts(store)
            assert "revoked" in alerts, alerts
            revoked_alert = next(a for a in store.list_alerts() if a.kind == "revoked")
            assert revoked_alert.severity.value == "critical"
            assert "Fix: install a newly issued certificate" in revoked_alert.details["message"]
            # The operator installs a new certificate; the next cycle sees it.
            tls.context = server_context(
                ServedChain(chain=pki.served_chain_der(replacement), key_pem=replacement.key_pem)
            )
            clock.advance(3600)
            daemon.run()
            assert "revoked" not in open_alerts(store)
            # Another cycle: the CRL and the OCSP answer are still valid, so neither is
            # fetched again (across endpoints and cycles, until nextUpdate).
            asked = responder.requests_answered
            clock.advance(3600)
            daemon.run()
            assert daemon.daemon.crl_downloads == 1
            assert responder.requests_answered == asked
            assert daemon.daemon.ocsp_hits == 1
    (endpoint,) = store.list_endpoints()
    history = store.endpoint_history(endpoint.id)
    assert [o.revocation_status for o in history] == ["good", "good", "revoked"]
    messages = [c.message for c in store.endpoint_changes(endpoint.id)]
    assert any(m.startswith("revoked: the certificate") for m in messages), messages


def test_revocation_that_cannot_be_checked_warns_after_k_cycles(
    tmp_path: Path, pki: ThrowawayPki, store: Store
) -> None:
    """OCSP answering 503 and no CRL: no alert for two cycles, a warning at the third
    (soft-fail said out loud), resolved when the responder answers again."""
    responder = OcspResponder(issuer=pki.intermediate.issued, clock=utc_now)
    with ExitStack() as stack, RevocationServer(responder=responder) as revocation:
        leaf = pki.issue_leaf(
            dns_names=("localhost",),
            ip_addresses=("127.0.0.1",),
            ocsp_urls=[revocation.url("/ocsp")],
        )
        responder.statuses[leaf.certificate.serial_number] = GOOD
        revocation.statuses["/ocsp"] = 503
        with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server:
            config = write_config(
                tmp_path,
                root_pem=pki.root.pem,
                endpoints=[("localhost", server.port, None)],
                default_checks=True,
            )
            clock = SteppedClock()
            daemon = stack.enter_context(cycles(config, store, clock))
            seen = []
            for _ in range(3):
                daemon.run()
                seen.append("revocation_unchecked" in open_alerts(store))
                clock.advance(3600)
            assert seen == [False, False, True]
            message = next(
                a for a in store.list_alerts() if a.kind == "revocation_unchecked"
            ).details["message"]
            assert "for 3 checks in a row" in message
            assert "Fix:" in message
            del revocation.statuses["/ocsp"]
            daemon.run()
            assert "revocation_unchecked" not in open_alerts(store)


@contextmanager
def s_server(port: int, files: dict[str, Path], *args: str) -> Iterator[int]:
    """``openssl s_server`` on 127.0.0.1:``port`` (0 for any) serving the PKI chain."""
    process = subprocess.Popen(
        ["openssl", "s_server", "-accept", f"127.0.0.1:{port}", "-cert", str(files["cert"]),
         "-key", str(files["key"]), "-cert_chain", str(files["chain"]), "-rev", *args],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("ACCEPT"):
                threading.Thread(target=process.stdout.read, daemon=True).start()
                # "ACCEPT 127.0.0.1:port" for port 0; a plain "ACCEPT" for a given one.
                yield port or int(line.strip().rsplit(":", 1)[1])
                break
        else:
            raise RuntimeError(f"s_server {' '.join(args)} did not start")
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


MODERN = ("-no_tls1", "-no_tls1_1")
LEGACY = ("-cipher", "DEFAULT:@SECLEVEL=0")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl command is missing")
def test_weak_protocol_and_grade_drop_alert_and_resolve(
    tmp_path: Path, pki: ThrowawayPki, store: Store
) -> None:
    """A server weakened between two daily checks (TLS 1.0 turned on) raises "TLS 1.0
    enabled" and "grade dropped" naming the capping rule; restoring it resolves both. The
    certificate-only cycles in between leave those alerts as they are."""
    leaf = pki.issue_leaf(dns_names=("localhost",), ip_addresses=("127.0.0.1",))
    files = {"cert": tmp_path / "leaf.pem", "key": tmp_path / "leaf.key"}
    files["chain"] = tmp_path / "chain.pem"
    files["cert"].write_bytes(leaf.pem)
    files["key"].write_bytes(leaf.key_pem)
    files["chain"].write_bytes(pki.intermediate.pem)
    clock = SteppedClock()
    with s_server(0, files, *MODERN) as port:
        config = write_config(
            tmp_path,
            root_pem=pki.root.pem,
            endpoints=[("localhost", port, None)],
            default_checks=True,
        )
        daemon = Cycles(config, store, clock)
        daemon.run()
    try:
        first_grade = endpoint_grade(store)
        assert first_grade is not None
        assert not {"weak_protocol", "grade_dropped"} & set(open_alerts(store))
        # The server is reconfigured: security level 0, so TLS 1.0 and 1.1 come back.
        with s_server(port, files, *LEGACY):
            clock.advance(3600)  # the certificate is due, the daily probes are not
            daemon.run()
            assert not {"weak_protocol", "grade_dropped"} & set(open_alerts(store))
            clock.advance(2 * DAY_S)
            daemon.run()
            alerts = open_alerts(store)
            assert alerts.get("weak_protocol", "").startswith("TLS 1.0 enabled"), alerts
            assert "grade_dropped" in alerts, alerts
            assert alerts["grade_dropped"].startswith(f"Grade dropped {first_grade} \u2192 B")
            drop = next(a for a in store.list_alerts() if a.kind == "grade_dropped")
            assert "tls10_tls11" in drop.details["message"]
        with s_server(port, files, *MODERN):
            clock.advance(2 * DAY_S)
            daemon.run()
    finally:
        daemon.close()
    assert not {"weak_protocol", "grade_dropped", "weak_cipher"} & set(open_alerts(store))
    assert endpoint_grade(store) == first_grade
    # The store tells the story: grade and protocols per observation, and the changes.
    (endpoint,) = store.list_endpoints()
    history = store.endpoint_history(endpoint.id)
    assert [o.grade for o in history] == [first_grade, "B", None, first_grade]
    assert [o.checks for o in history][1:3] == [
        "cert,revocation,protocols,grade",
        "cert,revocation",
    ]
    assert history[1].protocols is not None and "TLSv1.0" in history[1].protocols
    messages = [c.message for c in store.endpoint_changes(endpoint.id)]
    assert f"grade {first_grade} \u2192 B" in messages
    assert "TLS 1.0 enabled" in messages
    assert "TLS 1.0 disabled" in messages
    assert f"grade B \u2192 {first_grade}" in messages


def endpoint_grade(store: Store) -> str | None:
    from sqlalchemy import select

    from certvigil.store.models import ENDPOINTS

    with store.read() as connection:
        grade: str | None = connection.execute(select(ENDPOINTS.c.grade)).scalar()
    return grade


def test_fresh_database_runs_every_check_and_a_restart_keeps_the_daily_ones(
    tmp_path: Path, pki: ThrowawayPki, store: Store
) -> None:
    """The first ``run --once`` on a fresh database runs every check; the next one (a
    new daemon, as from cron) runs the certificate and revocation checks only, since the
    store says the daily ones ran minutes ago."""
    leaf = pki.issue_leaf(dns_names=("localhost",), ip_addresses=("127.0.0.1",))
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server:
        config = write_config(
            tmp_path,
            root_pem=pki.root.pem,
            endpoints=[("localhost", server.port, None)],
            default_checks=True,
        )
        for _ in range(2):
            loaded = load_config(config)
            daemon = Daemon(
                loaded,
                expand_targets(loaded).targets,
                store=store,
                scan_options=ScanOptions(retries=0, fetch_missing_issuers=False),
            )
            asyncio.run(daemon.run(once=True))
    (endpoint,) = store.list_endpoints()
    newest_first = [o.checks for o in store.endpoint_history(endpoint.id)]
    assert newest_first == ["cert,revocation", "cert,revocation,protocols,grade"]

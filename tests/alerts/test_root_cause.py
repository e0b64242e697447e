"""Alerts name the root cause once: real chains judged by analysis, then the alert rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cryptography.x509.oid import ExtendedKeyUsageOID

from certvigil.alerts.engine import AlertEngine
from certvigil.alerts.routing import AlertRoute
from certvigil.alerts.rules import AlertKind, AlertPolicy, EndpointHistory, EventAction, evaluate
from certvigil.analysis.model import EndpointReport, Finding, Severity
from certvigil.analysis.report import analyse_endpoint
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import (
    CertificateAuthority,
    IssuedCert,
    KeySpec,
    ThrowawayPki,
    self_signed_leaf,
)
from certvigil.observed.handshake import TlsObservation
from certvigil.store import AlertState, Store
from certvigil.store.outbox import list_deliveries
from certvigil.targets.target import Target

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TARGET = Target(host="localhost", port=443)
# CAs issued a year before NOW, so leaves from any time in that year chain to them.
PKI = ThrowawayPki.create(now_utc=NOW - timedelta(days=365))
TRUST = TrustStore.from_certificates([PKI.root.certificate], source="test root")
ROUTE = AlertRoute(name="chat", url="json://127.0.0.1:9/chat", min_severity=Severity.INFO)


def _report(
    chain_der: tuple[bytes, ...], findings: tuple[Finding, ...] = (), *, trust: TrustStore = TRUST
) -> EndpointReport:
    observation = TlsObservation(
        target=TARGET,
        peer_address="127.0.0.1",
        observed_at_utc=NOW,
        chain_der=chain_der,
        protocol="TLSv1.3",
        cipher="TLS_AES_128_GCM_SHA256",
        connect_s=0.001,
        handshake_s=0.002,
    )
    report = analyse_endpoint(observation, now=NOW, trust=trust)
    if findings:
        report = EndpointReport(
            target=report.target,
            evaluated_at_utc=report.evaluated_at_utc,
            observation=report.observation,
            certificates=report.certificates,
            chain=report.chain,
            hostname_matches=report.hostname_matches,
            findings=(*findings, *report.findings),
        )
    return report


def _opened(report: EndpointReport) -> list[tuple[AlertKind, str]]:
    events = evaluate(report, EndpointHistory(), AlertPolicy(), now=NOW)
    return [(e.kind, e.message) for e in events if e.action is EventAction.OPEN]


def _leaf(not_before: datetime, not_after: datetime) -> IssuedCert:
    return PKI.issue_leaf(not_before_utc=not_before, not_after_utc=not_after)


def test_expired_leaf_under_a_trusted_chain_raises_one_alert() -> None:
    """An expired leaf whose chain is otherwise trusted raises `expired` only; its message
    says clients refuse it and that renewing fixes it, and no `untrusted` alert opens."""
    leaf = _leaf(NOW - timedelta(days=100), NOW - timedelta(days=3))
    opened = _opened(_report(PKI.served_chain_der(leaf)))
    assert [kind for kind, _ in opened] == [AlertKind.EXPIRED]
    assert "untrusted" in opened[0][1]
    assert "renewing the certificate fixes it" in opened[0][1]


def test_not_yet_valid_leaf_raises_its_own_alert_only() -> None:
    """A leaf valid only from tomorrow raises `not_yet_valid`, not `untrusted`."""
    leaf = _leaf(NOW + timedelta(days=1), NOW + timedelta(days=90))
    opened = _opened(_report(PKI.served_chain_der(leaf)))
    assert [kind for kind, _ in opened] == [AlertKind.NOT_YET_VALID]
    assert "the chain is otherwise trusted" in opened[0][1]


def test_expired_self_signed_leaf_raises_both_causes() -> None:
    """An expired self-signed leaf has two causes: `expired` and an `untrusted` alert that
    says self-signed (renewing alone would not make it trusted)."""
    leaf = self_signed_leaf(
        not_before_utc=NOW - timedelta(days=400), not_after_utc=NOW - timedelta(days=1)
    )
    opened = dict(_opened(_report(leaf.chain_der())))
    assert set(opened) == {AlertKind.EXPIRED, AlertKind.UNTRUSTED}
    assert "renewing" not in opened[AlertKind.EXPIRED]
    assert "self-signed" in opened[AlertKind.UNTRUSTED]


def test_sha1_signed_leaf_raises_the_weak_alert_only() -> None:
    """A SHA-1-signed leaf breaks the chain; the `weak` alert names the signature and no
    `untrusted` alert repeats it."""
    root = CertificateAuthority.root(key=KeySpec.RSA_2048, now_utc=NOW - timedelta(days=365))
    issuer = root.intermediate(key=KeySpec.RSA_2048)
    leaf = issuer.issue_leaf(signature_hash="sha1", not_before_utc=NOW - timedelta(days=1))
    trust = TrustStore.from_certificates([root.certificate], source="rsa root")
    opened = _opened(_report(leaf.chain_der(issuer), trust=trust))
    assert [kind for kind, _ in opened] == [AlertKind.WEAK]
    assert "sha1WithRSAEncryption" in opened[0][1]


def test_leaf_not_for_servers_is_one_untrusted_alert_naming_the_purpose() -> None:
    """A leaf whose extendedKeyUsage allows only clientAuth raises one `untrusted` alert
    that names the purpose, not the verifier's wording."""
    leaf = PKI.issue_leaf(
        extended_key_usage=(ExtendedKeyUsageOID.CLIENT_AUTH,),
        not_before_utc=NOW - timedelta(days=1),
    )
    opened = _opened(_report(PKI.served_chain_der(leaf)))
    assert [kind for kind, _ in opened] == [AlertKind.UNTRUSTED]
    assert "clientAuth" in opened[0][1]


def test_revoked_leaf_raises_revoked_with_the_consequence() -> None:
    """A revoked leaf under a trusted chain raises `revoked` only, saying clients refuse it."""
    leaf = _leaf(NOW - timedelta(days=10), NOW + timedelta(days=80))
    revoked = Finding(
        code="revoked", severity=Severity.CRITICAL, message="localhost was revoked", cert_index=0
    )
    opened = _opened(_report(PKI.served_chain_der(leaf), (revoked,)))
    assert [kind for kind, _ in opened] == [AlertKind.REVOKED]
    assert "refuse it as untrusted" in opened[0][1]


def test_expired_leaf_through_the_store_opens_and_delivers_one_alert(store: Store) -> None:
    """Through the engine and a real store, an expired leaf seen on three cycles opens one
    alert (`expired`) with one delivery, and serving a renewed leaf resolves it."""
    engine = AlertEngine(store, routes=(ROUTE,))
    expired = _leaf(NOW - timedelta(days=100), NOW - timedelta(days=3))
    for _ in range(3):
        engine.record_and_process(_report(PKI.served_chain_der(expired)), NOW)
    alerts = engine.list_alerts()
    assert [(a.kind, a.state) for a in alerts] == [(AlertKind.EXPIRED.value, AlertState.OPEN)]
    with store.read() as connection:
        assert [d.event for d in list_deliveries(connection)] == ["opened"]
    renewed = _leaf(NOW - timedelta(days=1), NOW + timedelta(days=89))
    engine.record_and_process(_report(PKI.served_chain_der(renewed)), NOW)
    states = {a.kind: a.state for a in engine.list_alerts()}
    assert states[AlertKind.EXPIRED.value] is AlertState.RESOLVED
    assert AlertKind.UNTRUSTED.value not in states


def test_untrusted_alert_leaves_out_an_unneeded_expired_certificate() -> None:
    """An expired self-signed leaf served with a stray expired certificate: the `untrusted`
    alert names the self-signed leaf only; the stray one is advice, not a cause."""
    leaf = self_signed_leaf(
        not_before_utc=NOW - timedelta(days=400), not_after_utc=NOW - timedelta(days=1)
    )
    stray = PKI.issue_leaf(
        dns_names=("stray.test",),
        not_before_utc=NOW - timedelta(days=100),
        not_after_utc=NOW - timedelta(days=3),
    )
    opened = dict(_opened(_report((leaf.der, stray.der))))
    assert set(opened) == {AlertKind.EXPIRED, AlertKind.UNTRUSTED}
    assert "self-signed" in opened[AlertKind.UNTRUSTED]
    assert "stray.test" not in opened[AlertKind.UNTRUSTED]

"""A scan fills one observation per endpoint and its report is that observation judged."""

from __future__ import annotations

from certvigil.analysis.judge import judge
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer, closed_port
from certvigil.observed.endpoint import ObservedStep
from certvigil.observed.handshake import FailureKind, ProbeFailure, TlsObservation
from certvigil.observed.tls_config import TlsConfigObservation
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import scan
from certvigil.targets.target import Target


def test_the_report_is_its_observation_judged_once() -> None:
    """With the deep checks, the observation holds the handshake and the protocol probes,
    and judging it again at the report's time gives the very same report."""
    pki = ThrowawayPki.create()
    leaf = pki.issue_leaf()
    trust = TrustStore.from_certificates([pki.root.certificate], source="lab")
    options = ScanOptions(deep=True, retries=0, connect_timeout_s=2)
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as address:
        target = Target(host="127.0.0.1", port=address.port, sni="localhost")
        (report,) = scan([target], options=options, trust=trust)

    observed = report.observed
    assert observed is not None
    assert isinstance(observed.handshake, TlsObservation)
    assert observed.handshake is report.observation
    assert isinstance(observed.tls_config, TlsConfigObservation)
    assert observed.steps == (ObservedStep.ISSUERS, ObservedStep.TLS_CONFIG)
    assert observed.cut_steps == () and observed.issuer_fetches == ()
    assert report.deep is not None and report.deep.observation is observed.tls_config
    assert judge(observed, report.evaluated_at_utc, trust, options.policy) == report


def test_a_failed_endpoint_keeps_its_observation() -> None:
    """A refused connection is observed too: the store can keep it like any other."""
    pki = ThrowawayPki.create()
    trust = TrustStore.from_certificates([pki.root.certificate], source="lab")
    with closed_port() as address:
        target = Target(host="127.0.0.1", port=address.port)
        (report,) = scan([target], options=ScanOptions(retries=0), trust=trust)

    assert report.observed is not None
    assert isinstance(report.observed.handshake, ProbeFailure)
    assert report.observed.handshake.kind is FailureKind.CONNECTION_REFUSED
    assert report.failure is report.observed.handshake

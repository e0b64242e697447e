"""``certvigil scan --checks``: what each name selects, and deep probes under the scan's limits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.scan.checks import ScanChecks, parse_checks
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import scan
from certvigil.targets.target import Target
from tests.cli.scan_lab import run_cli

from .conftest import CertFiles, StartServer

FAST = ("--connect-timeout", "2", "--handshake-timeout", "2", "--retries", "0", "--no-progress")


def test_grade_selects_revocation_and_the_tls_probes() -> None:
    """``grade`` implies protocols, ciphers and revocation; ``protocols`` alone skips revocation."""
    assert parse_checks("grade") == ScanChecks(revocation=True, tls_config=True)
    assert parse_checks("cert,protocols") == ScanChecks(revocation=False, tls_config=True)
    assert parse_checks(" Revocation ") == ScanChecks(revocation=True, tls_config=False)
    assert parse_checks("cert") == ScanChecks()


def test_unknown_check_is_a_usage_error_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown name exits 64 and names both the bad name and the valid ones."""
    result = run_cli(capsys, "scan", "--checks", "cert,ocsp", "127.0.0.1:1", *FAST)
    assert result.code == 64
    assert '"ocsp"' in result.stderr
    assert "cert, revocation, protocols, ciphers, grade" in result.stderr


def test_checks_protocols_probes_without_revocation(
    s_server: StartServer, cert_files: CertFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--checks protocols`` fills ``deep`` and leaves ``revocation`` null."""
    port = s_server("-tls1_3")
    result = run_cli(
        capsys, "scan", f"localhost:{port}", "--checks", "protocols", "--json",
        "--no-default-ca", "--ca-file", str(cert_files.cert), *FAST,
    )  # fmt: skip
    endpoint = json.loads(result.stdout)["endpoints"][0]
    assert endpoint["deep"]["tls_config"]["protocols"] == ["TLSv1.3"]
    assert endpoint["revocation"] is None


def test_checks_grade_also_checks_revocation(
    s_server: StartServer, cert_files: CertFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--checks grade`` runs revocation too: a certificate naming no OCSP/CRL says so."""
    port = s_server("-tls1_3")
    result = run_cli(
        capsys, "scan", f"localhost:{port}", "--checks", "grade", "--json",
        "--no-default-ca", "--ca-file", str(cert_files.cert), *FAST,
    )  # fmt: skip
    endpoint = json.loads(result.stdout)["endpoints"][0]
    assert endpoint["deep"]["grade"]["grade"] is not None
    assert endpoint["revocation"] is not None


@pytest.fixture
def two_servers() -> Iterator[tuple[TrustStore, list[TlsServer]]]:
    """Two TLS servers on 127.0.0.1 (different ports) that hold each connection 30 ms."""
    pki = ThrowawayPki.create()
    servers: list[TlsServer] = []
    with ExitStack() as stack:
        for _ in range(2):
            leaf = pki.issue_leaf()
            server = TlsServer(
                chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem, hold_before_handshake_s=0.03
            )
            stack.enter_context(server)
            servers.append(server)
        yield TrustStore.from_certificates([pki.root.certificate], source="lab"), servers


def _overlap(intervals: list[tuple[float, float]], tolerance_s: float = 0.01) -> int:
    events = sorted(
        [(start, 1) for start, end in intervals if end - start > tolerance_s]
        + [(end - tolerance_s, -1) for start, end in intervals if end - start > tolerance_s]
    )
    most = current = 0
    for _when, step in events:
        current += step
        most = max(most, current)
    return most


def test_deep_probes_share_the_per_ip_limit(
    two_servers: tuple[TrustStore, list[TlsServer]],
) -> None:
    """Deep probes of two endpoints on one address never hold more than ``per_ip`` connections."""
    trust, servers = two_servers
    targets = [Target(host="127.0.0.1", port=s.address.port, sni="localhost") for s in servers]
    reports = scan(
        targets,
        options=ScanOptions(deep=True, per_ip_concurrency=4, retries=0, connect_timeout_s=2),
        trust=trust,
    )
    assert all(report.deep is not None for report in reports)
    intervals = [interval for s in servers for interval in s.connection_intervals]
    assert len(intervals) > 10
    # Each endpoint alone may use 4; without the shared limiter the two reach 8.
    assert _overlap(intervals) <= 4

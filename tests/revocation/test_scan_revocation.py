"""``certvigil scan --checks revocation`` against loopback TLS and OCSP/CRL servers."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from certvigil.analysis.judge import judge
from certvigil.analysis.revocation_model import RevocationStatus
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import ServerAddress, TlsServer
from certvigil.observed.codec import observation_from_dict
from certvigil.output.json_schema import ScanDocument
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import scan
from certvigil.targets.target import Target
from tests.cli.scan_lab import run_cli
from tests.revocation.helpers import fresh_crl, issue, utc_now
from tests.support.ocsp_responder import RevocationServer, Revoked

FAST = ("--connect-timeout", "2", "--handshake-timeout", "2", "--retries", "0", "--no-progress")


@pytest.fixture
def ca_file(pki: ThrowawayPki, tmp_path: Path) -> Path:
    """The lab root as a CA file."""
    path = tmp_path / "root.pem"
    path.write_bytes(pki.root.pem)
    return path


def _serving(stack: ExitStack, pki: ThrowawayPki, leaf: IssuedCert) -> ServerAddress:
    server = TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem)
    return stack.enter_context(server)


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    """Servers entered in a test, stopped at its end."""
    with ExitStack() as entered:
        yield entered


def _scan_json(
    capsys: pytest.CaptureFixture[str], ca_file: Path, *args: str
) -> tuple[int, dict[str, Any]]:
    result = run_cli(
        capsys,
        "scan",
        "--no-default-ca",
        "--ca-file",
        str(ca_file),
        "--json",
        "--sni",
        "localhost",
        *FAST,
        *args,
    )
    return result.code, json.loads(result.stdout)


def test_checks_revocation_fills_the_verdict_and_names_the_method(
    capsys: pytest.CaptureFixture[str],
    pki: ThrowawayPki,
    server: RevocationServer,
    ca_file: Path,
    stack: ExitStack,
) -> None:
    """A leaf its OCSP responder calls good is good, decided by OCSP, and exits 0."""
    address = _serving(stack, pki, issue(pki, server))
    code, document = _scan_json(capsys, ca_file, "--checks", "cert,revocation", address.endpoint)
    endpoint = document["endpoints"][0]
    revocation = endpoint["revocation"]
    assert revocation["leaf_status"] == "good"
    assert revocation["certificates"][0]["decided_by"] == "ocsp"
    assert revocation["staple"]["was_requested"] is True
    assert endpoint["deep"] is None
    assert code == 0, endpoint["findings"]


def test_revoked_leaf_is_critical_in_the_scan(
    capsys: pytest.CaptureFixture[str],
    pki: ThrowawayPki,
    server: RevocationServer,
    ca_file: Path,
    stack: ExitStack,
) -> None:
    """A revoked leaf adds the ``revoked`` finding, a critical verdict and exit code 2."""
    leaf = issue(pki, server, good=False)
    assert server.responder is not None
    server.responder.statuses[leaf.certificate.serial_number] = Revoked(
        revoked_at_utc=(utc_now() - timedelta(days=1)).replace(microsecond=0),
        reason=x509.ReasonFlags.key_compromise,
    )
    address = _serving(stack, pki, leaf)
    code, document = _scan_json(capsys, ca_file, "--checks", "revocation", address.endpoint)
    endpoint = document["endpoints"][0]
    assert endpoint["revocation"]["is_revoked"] is True
    assert "revoked" in {f["code"] for f in endpoint["findings"]}
    assert endpoint["verdict"] == "critical"
    assert code == 2


def test_without_the_check_revocation_is_not_fetched(
    capsys: pytest.CaptureFixture[str],
    pki: ThrowawayPki,
    server: RevocationServer,
    ca_file: Path,
    stack: ExitStack,
) -> None:
    """A plain scan leaves ``revocation`` null and asks the responder nothing."""
    address = _serving(stack, pki, issue(pki, server))
    _, document = _scan_json(capsys, ca_file, address.endpoint)
    assert document["endpoints"][0]["revocation"] is None
    assert server.requests_seen == []


def test_one_crl_download_serves_every_endpoint_of_the_scan(
    pki: ThrowawayPki, server: RevocationServer, stack: ExitStack
) -> None:
    """Three endpoints under one CRL: the CRL is fetched once and each leaf is judged by it."""
    leaves = [issue(pki, server, ocsp=False, crl=True, good=False) for _ in range(3)]
    server.files["/int.crl"] = fresh_crl(pki)
    endpoints = [
        Target(host="127.0.0.1", port=_serving(stack, pki, leaf).port, sni="localhost")
        for leaf in leaves
    ]
    trust = TrustStore.from_certificates([pki.root.certificate], source="lab root")
    reports = scan(
        endpoints,
        options=ScanOptions(revocation=True, retries=0, connect_timeout_s=2),
        trust=trust,
    )
    assert len(reports) == 3
    for report in reports:
        assert report.revocation is not None
        assert report.revocation.leaf_status is RevocationStatus.GOOD
    assert server.requests_seen.count(("GET", "/int.crl")) == 1


def test_table_shows_the_leaf_status_and_the_deciding_method(
    capsys: pytest.CaptureFixture[str],
    pki: ThrowawayPki,
    server: RevocationServer,
    ca_file: Path,
    stack: ExitStack,
) -> None:
    """With revocation checked, the table gains a Revocation column: ``good (ocsp)``."""
    address = _serving(stack, pki, issue(pki, server))
    result = run_cli(
        capsys, "scan", "--no-default-ca", "--ca-file", str(ca_file), "--sni", "localhost",
        "--checks", "revocation", *FAST, address.endpoint,
    )  # fmt: skip
    assert "Revocation" in result.stdout
    assert "good (ocsp)" in result.stdout


def test_must_staple_without_staple_is_one_finding_in_the_scan(
    pki: ThrowawayPki, server: RevocationServer, stack: ExitStack
) -> None:
    """A must-staple leaf served without a staple is named once when revocation is checked
    too, not by the certificate rule and again by the staple rule."""
    leaf = issue(pki, server, must_staple=True)
    endpoint = Target(host="127.0.0.1", port=_serving(stack, pki, leaf).port, sni="localhost")
    trust = TrustStore.from_certificates([pki.root.certificate], source="lab root")
    (report,) = scan(
        [endpoint],
        options=ScanOptions(revocation=True, retries=0, connect_timeout_s=2),
        trust=trust,
    )
    assert report.revocation is not None
    codes = [f.code for f in report.findings]
    assert codes.count("must_staple_not_stapled") + codes.count("must_staple_without_staple") == 1


def test_include_observation_writes_each_observation_and_each_crl_once(
    capsys: pytest.CaptureFixture[str],
    pki: ThrowawayPki,
    server: RevocationServer,
    ca_file: Path,
    stack: ExitStack,
) -> None:
    """--json --include-observation: each endpoint carries its observation document, the
    one CRL of the three endpoints is written once for the scan, and judging an
    observation read back from the document gives the endpoint's verdict again."""
    leaves = [issue(pki, server, ocsp=False, crl=True, good=False) for _ in range(3)]
    revoked = leaves[0].certificate.serial_number
    server.files["/int.crl"] = fresh_crl(
        pki, revoked=[(revoked, Revoked(revoked_at_utc=utc_now() - timedelta(hours=2)))]
    )
    endpoints = [_serving(stack, pki, leaf).endpoint for leaf in leaves]

    code, document = _scan_json(
        capsys, ca_file, "--checks", "cert,revocation", "--include-observation", *endpoints
    )

    ScanDocument.model_validate(document)
    assert code == 2
    assert list(document["crls"]) == [
        document["endpoints"][0]["observed"]["observation"]["revocation"]["certificates"][0][
            "fetches"
        ][0]["response_sha256"]
    ]
    crls = {digest: base64.b64decode(text) for digest, text in document["crls"].items()}
    trust = TrustStore.from_certificates([pki.root.certificate], source="lab root")
    for endpoint in document["endpoints"]:
        assert endpoint["observed"]["crls"] == {}
        observation = observation_from_dict(endpoint["observed"], crls=crls)
        again = judge(observation, utc_now(), trust)
        assert again.revocation is not None
        assert again.revocation.is_revoked is (endpoint["revocation"]["leaf_status"] == "revoked")
    statuses = sorted(e["revocation"]["leaf_status"] for e in document["endpoints"])
    assert statuses == ["good", "good", "revoked"]


def test_include_observation_needs_json(capsys: pytest.CaptureFixture[str], ca_file: Path) -> None:
    """The option makes sense only for the JSON document: anything else is a usage error."""
    result = run_cli(capsys, "scan", "--include-observation", "127.0.0.1:1")

    assert result.code == 64
    assert "--include-observation needs --json" in result.stderr

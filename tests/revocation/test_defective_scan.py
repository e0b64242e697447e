"""Revocation, deep scans and grades of endpoints serving defective certificates.

Each certificate here is one the basic scan judges (a duplicated extension, a malformed
SAN or basicConstraints, a NUL in a DNSName, a PrintableString with '@'): the optional
checks must add their verdicts to those findings, never turn them into internal_error.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

import certvigil.cli.grade_cmd  # noqa: F401  (registers the command)
from certvigil.analysis.revocation_model import RevocationStatus
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import ServerAddress, TlsServer
from tests.cli.scan_lab import run_cli
from tests.revocation.helpers import check, fresh_crl
from tests.support.crafted import CraftedLeaf, craft
from tests.support.ocsp_responder import GOOD, RevocationServer

FAST = ("--connect-timeout", "2", "--handshake-timeout", "2", "--retries", "0", "--no-progress")
# Defects OpenSSL still serves as the leaf; a duplicated extension it refuses to load as
# the server's own certificate, so that one is served after the chain.
_AS_LEAF = ("nul_in_dns_name", "malformed_san", "bad_basic_constraints", "bad_printable_string")
_PROBLEM_CODE = {
    "nul_in_dns_name": "certificate_parse_problem",
    "malformed_san": "certificate_parse_problem",
    "bad_basic_constraints": "certificate_parse_problem",
    "bad_printable_string": "malformed_certificate",
    "duplicate_extension": "certificate_parse_problem",
}


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    """Servers entered in a test, stopped at its end."""
    with ExitStack() as entered:
        yield entered


@pytest.fixture
def ca_file(pki: ThrowawayPki, tmp_path: Path) -> Path:
    """The lab root as a CA file."""
    path = tmp_path / "root.pem"
    path.write_bytes(pki.root.pem)
    return path


def _crafted(name: str, pki: ThrowawayPki, server: RevocationServer) -> CraftedLeaf:
    """The defective leaf, naming the loopback OCSP responder and CRL, marked good."""
    server.files["/int.crl"] = fresh_crl(pki)
    leaf = craft(
        name,
        pki.intermediate,
        ocsp_urls=(server.url("/ocsp"),),
        crl_urls=(server.url("/int.crl"),),
    )
    assert server.responder is not None
    serial = int.from_bytes(_serial_bytes(leaf.der), "big")
    server.responder.statuses[serial] = GOOD
    return leaf


def _serial_bytes(der: bytes) -> bytes:
    # Certificate SEQUENCE > TBS SEQUENCE > [0] version > INTEGER serial (long forms).
    position = 4 + 4 + 5
    assert der[position] == 0x02
    return der[position + 2 : position + 2 + der[position + 1]]


def _serve(stack: ExitStack, pki: ThrowawayPki, name: str, leaf: CraftedLeaf) -> ServerAddress:
    if name in _AS_LEAF:
        server = TlsServer(chain=(leaf.pem, pki.intermediate.der), key_pem=leaf.key_pem)
    else:
        good = pki.issue_leaf(dns_names=("localhost",))
        chain = (good.der, pki.intermediate.der, leaf.pem)
        server = TlsServer(chain=chain, key_pem=good.key_pem)
    return stack.enter_context(server)


@pytest.mark.parametrize("name", ["duplicate_extension", "malformed_san", "bad_basic_constraints"])
def test_check_revocation_asks_about_a_defective_leaf(
    pki: ThrowawayPki, server: RevocationServer, name: str
) -> None:
    """OCSP and the CRL are asked about the leaf from what could be read, and say good."""
    leaf = _crafted(name, pki, server)
    report = check((leaf.der, pki.intermediate.der), extra_issuers_der=(pki.root.der,))
    entry = report.certificates[0]
    assert entry.cert_index == 0
    assert entry.status is RevocationStatus.GOOD, entry.methods
    assert {m.method.value for m in entry.methods} == {"ocsp", "crl"}


def test_check_revocation_leaves_out_a_leaf_that_does_not_load(
    pki: ThrowawayPki, server: RevocationServer
) -> None:
    """A leaf cryptography cannot load is not checked; the intermediate still is."""
    leaf = _crafted("bad_printable_string", pki, server)
    report = check((leaf.der, pki.intermediate.der), extra_issuers_der=(pki.root.der,))
    assert [c.cert_index for c in report.certificates] == [1]


def _endpoint(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    result = run_cli(capsys, "scan", "--json", "--sni", "localhost", *FAST, *args)
    document = json.loads(result.stdout)
    (endpoint,) = document["endpoints"]
    return result.code, endpoint


def test_basic_scan_lists_a_duplicated_extension_as_a_finding(
    capsys: pytest.CaptureFixture[str],
    pki: ThrowawayPki,
    server: RevocationServer,
    ca_file: Path,
    stack: ExitStack,
) -> None:
    """A plain scan reports the served certificate's repeated extension, not internal_error."""
    address = _serve(
        stack, pki, "duplicate_extension", _crafted("duplicate_extension", pki, server)
    )
    code, endpoint = _endpoint(
        capsys, "--no-default-ca", "--ca-file", str(ca_file), address.endpoint
    )
    assert endpoint.get("failure") is None, endpoint.get("failure")
    assert len(endpoint["certificates"]) == 3
    problems = [f for f in endpoint["findings"] if f["code"] == "certificate_parse_problem"]
    assert [f["cert_index"] for f in problems] == [2]
    assert "appears more than once" in problems[0]["message"]
    assert code == 1  # warnings only: the chain itself is trusted


# A deep scan costs seconds: every defect with revocation, two with --deep.
_CASES = [
    pytest.param(n, ("--checks", "cert,revocation"), id=f"{n}-revocation")
    for n in sorted(_PROBLEM_CODE)
] + [
    pytest.param(n, ("--deep",), id=f"{n}-deep")
    for n in ("duplicate_extension", "bad_basic_constraints")
]


@pytest.mark.parametrize(("name", "checks"), _CASES)
def test_scan_with_optional_checks_keeps_the_basic_findings(
    capsys: pytest.CaptureFixture[str],
    pki: ThrowawayPki,
    server: RevocationServer,
    ca_file: Path,
    stack: ExitStack,
    name: str,
    checks: tuple[str, ...],
) -> None:
    """Revocation and deep checks add their verdicts to the basic findings: no internal_error."""
    address = _serve(stack, pki, name, _crafted(name, pki, server))
    trust = ("--no-default-ca", "--ca-file", str(ca_file))
    code, endpoint = _endpoint(capsys, *trust, *checks, address.endpoint)
    assert endpoint.get("failure") is None, endpoint.get("failure")
    codes = {f["code"] for f in endpoint["findings"]}
    assert _PROBLEM_CODE[name] in codes
    assert endpoint["revocation"] is not None
    if checks == ("--deep",):
        assert endpoint["deep"] is not None
    assert code in (1, 2)


def test_grade_of_an_endpoint_serving_a_defective_certificate(
    capsys: pytest.CaptureFixture[str],
    pki: ThrowawayPki,
    server: RevocationServer,
    ca_file: Path,
    stack: ExitStack,
) -> None:
    """``grade`` grades an endpoint serving a duplicated extension and names the defect."""
    name = "duplicate_extension"
    address = _serve(stack, pki, name, _crafted(name, pki, server))
    result = run_cli(
        capsys,
        "grade",
        f"localhost:{address.port}",
        "--no-default-ca",
        "--ca-file",
        str(ca_file),
        "--connect-timeout",
        "2",
        "--handshake-timeout",
        "2",
        "--json",
    )
    document = json.loads(result.stdout)
    assert document["assessment"]["grade"]["grade"]
    assert "certificate_parse_problem" in {f["code"] for f in document["findings"]}


def test_crl_with_an_unknown_version_is_an_invalid_answer(
    pki: ThrowawayPki, server: RevocationServer
) -> None:
    """A CRL whose version cryptography refuses (InvalidVersion) is judged invalid."""
    crl = fresh_crl(pki)
    position = crl.index(b"\x02\x01\x01")  # tbsCertList's first field: version v2 (1)
    assert position < 10
    server.files["/int.crl"] = crl[:position] + b"\x02\x01\x05" + crl[position + 3 :]
    leaf = pki.issue_leaf(crl_urls=(server.url("/int.crl"),))
    report = check((leaf.der, pki.intermediate.der), extra_issuers_der=(pki.root.der,))
    (method,) = report.certificates[0].methods
    assert method.status is RevocationStatus.INVALID_RESPONSE
    assert "Invalid CRL version" in method.detail or "cannot be read" in method.detail

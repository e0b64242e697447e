"""``certvigil grade`` end to end against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import certvigil.cli.grade_cmd  # noqa: F401  (registers the command)
from certvigil.cli.app import main
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import StartTlsServer, TlsServer
from certvigil.targets.target import StartTLS

from .conftest import CertFiles, StartServer


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_grade_json_for_a_tls13_server(
    s_server: StartServer, cert_files: CertFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trusted TLS 1.3-only endpoint grades A, with every result in the JSON.

    Its certificate is inside the 30-day expiry threshold, a warning: exit 1, as ``scan``.
    """
    port = s_server("-tls1_3")
    code, out, _ = run(
        ["grade", f"localhost:{port}", "--no-default-ca", "--ca-file", str(cert_files.cert),
         "--no-revocation", "--json"],
        capsys,
    )  # fmt: skip
    document = json.loads(out)
    grade = document["assessment"]["grade"]
    assert grade["grade"] == "A", grade["rules"]
    assert "expires_soon" in {finding["code"] for finding in document["findings"]}
    assert code == 1, document["findings"]
    assert document["assessment"]["tls_config"]["protocols"] == ["TLSv1.3"]
    assert {m["profile"] for m in document["assessment"]["mozilla"]} == {
        "modern", "intermediate", "old",
    }  # fmt: skip
    assert document["assessment"]["observation"]["handshake_count"] > 5


def test_grade_table_for_an_untrusted_legacy_server(
    s_server: StartServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """An endpoint whose certificate is not trusted grades T, exit 2, rules in the table;
    the headline says the grade it would get once trusted, as SSL Labs does."""
    port = s_server("-cipher", "ALL:@SECLEVEL=0")
    code, out, _ = run(["grade", f"localhost:{port}", "--no-revocation"], capsys)
    assert code == 2
    assert "grade T (if trusted: F)" in out
    assert "certificate_not_trusted" in out
    assert "anonymous_suites" in out


def test_grade_of_a_closed_port_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    """An endpoint that cannot be reached exits 3 with a one-line error on stderr."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code, out, err = run(["grade", f"127.0.0.1:{port}", "--no-revocation", "--json"], capsys)
    assert code == 3
    assert out == ""
    assert "connection_refused" in err


def test_grade_refuses_a_subnet(capsys: pytest.CaptureFixture[str]) -> None:
    """A CIDR block is a usage error (exit 64): grade takes one endpoint."""
    code, _, err = run(["grade", "127.0.0.0/30"], capsys)
    assert code == 64
    assert "one endpoint" in err


def test_grade_exit_code_follows_critical_findings_not_the_letter(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An endpoint that grades A but whose certificate expires in 3 days exits 2, as scan does."""
    pki = ThrowawayPki.create()
    leaf = pki.issue_leaf(
        dns_names=("localhost",), not_after_utc=datetime.now(UTC) + timedelta(days=3)
    )
    ca_file = tmp_path / "root.pem"
    ca_file.write_bytes(pki.root.pem)
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as address:
        code, out, _ = run(
            ["grade", f"localhost:{address.port}", "--ca-file", str(ca_file),
             "--no-revocation", "--json"],
            capsys,
        )  # fmt: skip
    document = json.loads(out)
    assert document["assessment"]["grade"]["grade"].startswith("A")
    assert "expires_soon" in {finding["code"] for finding in document["findings"]}
    assert code == 2


def test_grade_takes_the_target_options_of_scan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``grade`` upgrades SMTP with ``--starttls smtp`` and takes ``-p`` and ``--sni``."""
    pki = ThrowawayPki.create()
    leaf = pki.issue_leaf(dns_names=("mail.grade.test",))
    ca_file = tmp_path / "root.pem"
    ca_file.write_bytes(pki.root.pem)
    server = StartTlsServer(StartTLS.SMTP, chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem)
    with server as address:
        code, out, err = run(
            ["grade", "127.0.0.1", "-p", str(address.port), "--starttls", "smtp",
             "--sni", "mail.grade.test", "--ca-file", str(ca_file), "--no-revocation", "--json",
             "--deadline", "20", "--retries", "0"],
            capsys,
        )  # fmt: skip
    assert code in (0, 1), err
    document = json.loads(out)
    assert document[
        "target"
    ] == f"127.0.0.1:{address.port} (sni mail.grade.test, starttls smtp)" or (
        str(address.port) in document["target"]
    )
    assert document["assessment"]["grade"]["grade"] not in ("T", "M")

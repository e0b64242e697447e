"""``certvigil grade`` end to end against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket

import pytest

import certvigil.cli.grade_cmd  # noqa: F401  (registers the command)
from certvigil.cli.app import main

from .conftest import CertFiles, StartServer


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def test_grade_json_for_a_tls13_server(
    s_server: StartServer, cert_files: CertFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    """A trusted TLS 1.3-only endpoint grades A, exit 0, with every result in the JSON."""
    port = s_server("-tls1_3")
    code, out, _ = run(
        ["grade", f"localhost:{port}", "--no-default-ca", "--ca-file", str(cert_files.cert),
         "--no-revocation", "--json"],
        capsys,
    )  # fmt: skip
    document = json.loads(out)
    grade = document["assessment"]["grade"]
    assert grade["grade"] == "A", grade["rules"]
    assert code == 0
    assert document["assessment"]["tls_config"]["protocols"] == ["TLSv1.3"]
    assert {m["profile"] for m in document["assessment"]["mozilla"]} == {
        "modern", "intermediate", "old",
    }  # fmt: skip
    assert document["assessment"]["observation"]["handshake_count"] > 5


def test_grade_table_for_an_untrusted_legacy_server(
    s_server: StartServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """An endpoint whose certificate is not trusted grades T, exit 2, rules in the table."""
    port = s_server("-cipher", "ALL:@SECLEVEL=0")
    code, out, _ = run(["grade", f"localhost:{port}", "--no-revocation"], capsys)
    assert code == 2
    assert "grade T" in out
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

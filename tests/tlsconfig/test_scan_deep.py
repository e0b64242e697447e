"""``certvigil scan --deep`` against real servers on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from certvigil.cli.app import main

from .conftest import CertFiles, StartServer


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, _ = capsys.readouterr()
    return int(exited.value.code or 0), out


def test_scan_deep_json_carries_the_assessment(
    s_server: StartServer, cert_files: CertFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    """--deep adds each endpoint's protocols, grade and profiles; TLS findings join the verdict."""
    modern = s_server("-tls1_3")
    legacy = s_server("-cipher", "ALL:@SECLEVEL=0")
    code, out = run(
        ["scan", f"localhost:{modern}", f"localhost:{legacy}", "--deep", "--json",
         "--no-default-ca", "--ca-file", str(cert_files.cert), "--no-progress"],
        capsys,
    )  # fmt: skip
    document = json.loads(out)
    by_port = {e["target"]["port"]: e for e in document["endpoints"]}
    assert by_port[modern]["deep"]["grade"]["grade"] == "A"
    assert by_port[modern]["deep"]["tls_config"]["protocols"] == ["TLSv1.3"]
    assert by_port[legacy]["deep"]["grade"]["grade"] == "F"
    legacy_codes = {f["code"] for f in by_port[legacy]["findings"]}
    assert {"protocol_tls10", "cipher_anonymous"} <= legacy_codes
    assert by_port[legacy]["verdict"] == "critical"
    assert code == 2


def test_scan_without_deep_has_no_assessment(
    s_server: StartServer, cert_files: CertFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --deep nothing is probed beyond the handshake."""
    port = s_server("-cipher", "ALL:@SECLEVEL=0")
    _, out = run(
        ["scan", f"localhost:{port}", "--json", "--no-default-ca", "--ca-file",
         str(cert_files.cert), "--no-progress"],
        capsys,
    )  # fmt: skip
    endpoint = json.loads(out)["endpoints"][0]
    assert endpoint["deep"] is None
    assert "protocol_tls10" not in {f["code"] for f in endpoint["findings"]}


def test_scan_deep_table_shows_grade(
    s_server: StartServer, cert_files: CertFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    """The table gains a Grade column and the key TLS facts."""
    port = s_server("-tls1_3")
    _, out = run(
        ["scan", f"localhost:{port}", "--deep", "--no-default-ca", "--ca-file",
         str(cert_files.cert), "--no-progress"],
        capsys,
    )  # fmt: skip
    assert "Grade" in out
    assert "1.3; FS all; AEAD yes" in out

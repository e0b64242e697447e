"""``certvigil check --require-no-tls1/--require-no-tls1_1`` against real openssl servers."""

from __future__ import annotations

import pytest

from tests.cli.scan_lab import run_cli

from .conftest import CertFiles, StartServer


def test_accepted_tls10_and_tls11_are_critical_when_forbidden(
    s_server: StartServer, cert_files: CertFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    """A server accepting TLS 1.0 and 1.1 (and nothing worse) is CRITICAL under the two
    options, naming both; the same probes without them leave it a WARNING."""
    port = s_server("-cipher", "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-SHA:@SECLEVEL=0")
    root = ["--rootcert-file", str(cert_files.cert)]
    strict = run_cli(
        capsys, "check", f"localhost:{port}", *root, "--require-no-tls1", "--require-no-tls1_1"
    )
    probed = run_cli(capsys, "check", f"localhost:{port}", *root, "--grade-below", "F")
    assert strict.code == 2, strict.stdout
    line = strict.stdout.splitlines()[0]
    assert line.startswith(f"CERTVIGIL CRITICAL - localhost:{port}: ")
    assert "TLS 1.0 is accepted" in line and "TLS 1.1 is accepted" in line
    assert probed.code == 1, probed.stdout
    assert probed.stdout.startswith(f"CERTVIGIL WARNING - localhost:{port}: TLS 1.")


def test_tls13_only_server_passes_the_protocol_options(
    s_server: StartServer, cert_files: CertFiles, capsys: pytest.CaptureFixture[str]
) -> None:
    """A TLS 1.3-only server is OK under --require-no-tls1 --require-no-tls1_1."""
    port = s_server("-tls1_3")
    result = run_cli(
        capsys, "check", f"localhost:{port}", "--rootcert-file", str(cert_files.cert),
        "--require-no-tls1", "--require-no-tls1_1",
    )  # fmt: skip
    assert result.code == 0, result.stdout

"""The demo lab serves each kind of trouble on loopback and ``certvigil demo`` judges it."""

from __future__ import annotations

import ipaddress
import json
import socket

import pytest

from certvigil.demo.endpoints import running_demo_lab
from tests.cli.scan_lab import run_cli


def test_lab_listens_only_on_loopback_and_stops() -> None:
    """Every demo endpoint is on a loopback address and is closed after the context."""
    with running_demo_lab() as lab:
        assert lab.ca_file.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        labels = [endpoint.label for endpoint in lab.endpoints]
        assert len(labels) == len(set(labels)) >= 11
        for endpoint in lab.endpoints:
            assert ipaddress.ip_address(endpoint.target.host).is_loopback
        listening = [e.target for e in lab.endpoints if not e.expect_failure]
        for target in listening:
            with socket.create_connection((target.host, target.port), timeout=5):
                pass
    for target in listening:
        with pytest.raises(OSError):
            socket.create_connection((target.host, target.port), timeout=5).close()


def test_demo_judges_every_endpoint_as_expected(capsys: pytest.CaptureFixture[str]) -> None:
    """``certvigil demo --json`` finds each planted fault and exits 0."""
    result = run_cli(capsys, "demo", "--json")
    assert result.code == 0, result.stderr
    assert "every endpoint was judged as expected" in result.stderr
    document = json.loads(result.stdout)
    assert document["command"] == "demo"
    codes = {
        e["target"]["sni"].split(".")[0]: {f["code"] for f in e["findings"]}
        for e in document["endpoints"]
    }
    assert "expired" in codes["expired"]
    assert "expires_soon" in codes["expiring"]
    assert "self_signed" in codes["self-signed"]
    assert "untrusted_root" in codes["untrusted-root"]
    assert "hostname_mismatch" in codes["wrong-host"]
    assert "incomplete_chain" in codes["missing-intermediate"]
    assert "weak_key" in codes["weak-key"]
    assert "weak_signature" in codes["sha1"]
    assert codes["good"] <= {"no_embedded_sct"}
    statuses = {e["target"]["sni"].split(".")[0]: e["status"] for e in document["endpoints"]}
    assert statuses["closed-port"] == "failed"
    assert statuses["smtp"] == "observed"
    assert document["summary"]["exit_code"] == 2


def test_demo_table_is_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a format flag the demo prints the table with one row per endpoint."""
    result = run_cli(capsys, "demo")
    assert result.code == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ 127.0.0.1:")]
    assert len(rows) >= 11

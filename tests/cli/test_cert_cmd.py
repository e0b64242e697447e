"""``certvigil cert`` judges certificate files offline with the scan's analysis."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certvigil.demo.pki import ThrowawayPki, self_signed_leaf
from certvigil.output.files import FILE_COLUMNS
from certvigil.output.json_schema import CertDocument
from tests.cli.scan_lab import Result, run_cli, run_process
from tests.support.crafted import craft


@pytest.fixture
def ca_file(pki: ThrowawayPki, tmp_path: Path) -> Path:
    """The PKI's root in a PEM file."""
    path = tmp_path / "root.pem"
    path.write_bytes(pki.root.pem)
    return path


def cert(capsys: pytest.CaptureFixture[str], ca_file: Path, *args: str) -> Result:
    """Run ``certvigil cert`` trusting only the lab root."""
    return run_cli(capsys, "cert", "--no-default-ca", "--ca-file", str(ca_file), *args)


def test_valid_chain_file_exits_0(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, ca_file: Path, tmp_path: Path
) -> None:
    """A PEM chain (leaf, intermediate) that verifies and covers --host exits 0."""
    path = tmp_path / "chain.pem"
    path.write_bytes(pki.issue_leaf(dns_names=("www.cert.test",)).chain_pem(pki.intermediate))
    result = cert(capsys, ca_file, str(path), "--host", "www.cert.test")
    assert result.code == 0, result.stdout + result.stderr
    assert "www.cert.test" in result.stdout
    assert "1 file: 1 ok" in result.stderr


def test_hostname_and_expiry_problems_exit_2(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, ca_file: Path, tmp_path: Path
) -> None:
    """An expired DER leaf checked against another name yields critical findings."""
    now = datetime.now(UTC)
    leaf = pki.issue_leaf(
        dns_names=("old.cert.test",),
        not_before_utc=now - timedelta(days=30),
        not_after_utc=now - timedelta(days=1),
    )
    path = tmp_path / "leaf.der"
    path.write_bytes(leaf.der)
    result = cert(capsys, ca_file, str(path), "--host", "new.cert.test", "--json")
    assert result.code == 2
    document = CertDocument.model_validate_json(result.stdout)
    codes = {f.code for f in document.files[0].findings}
    assert {"expired", "hostname_mismatch"} <= codes
    assert document.files[0].hostname_matches is False
    assert document.files[0].certificates[0].days_remaining < 0


def test_unreadable_file_is_reported_and_others_judged(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, ca_file: Path, tmp_path: Path
) -> None:
    """A file that is not a certificate gets an error line; the others are still judged."""
    good = tmp_path / "good.pem"
    good.write_bytes(pki.issue_leaf(dns_names=("a.cert.test",)).chain_pem(pki.intermediate))
    junk = tmp_path / "junk.pem"
    junk.write_text("hello\n")
    result = cert(capsys, ca_file, str(junk), str(good), "--csv")
    assert result.code == 3
    assert f'error: argv:1: "{junk}": ' in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == ",".join(FILE_COLUMNS)
    assert len(lines) == 2 and lines[1].startswith(str(good))


def test_each_judges_every_certificate_of_a_bundle(
    capsys: pytest.CaptureFixture[str], ca_file: Path, tmp_path: Path
) -> None:
    """--each gives one result per certificate in a bundle."""
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(
        self_signed_leaf(dns_names=("one.cert.test",)).pem
        + self_signed_leaf(dns_names=("two.cert.test",)).pem
    )
    result = cert(capsys, ca_file, str(bundle), "--each", "--json")
    document = json.loads(result.stdout)
    assert [f["source"] for f in document["files"]] == [f"{bundle}#1", f"{bundle}#2"]
    assert all("self_signed" in {x["code"] for x in f["findings"]} for f in document["files"])
    assert result.code == 2


def test_missing_file_only_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], ca_file: Path, tmp_path: Path
) -> None:
    """When no file can be read at all the exit code is 64."""
    result = cert(capsys, ca_file, str(tmp_path / "absent.pem"))
    assert result.code == 64
    assert "absent.pem" in result.stderr


@pytest.mark.parametrize("name", ["duplicate_extension", "nul_in_dns_name"])
def test_defective_certificate_is_judged_not_a_traceback(
    pki: ThrowawayPki, ca_file: Path, tmp_path: Path, name: str
) -> None:
    """A file whose leaf cryptography only half reads prints findings and exits by them."""
    leaf = craft(name, pki.intermediate)
    path = tmp_path / f"{name}.pem"
    path.write_bytes(leaf.pem + pki.intermediate.pem)
    args = ("cert", "--no-default-ca", "--ca-file", str(ca_file), str(path))
    result = run_process(*args, "--json")
    assert "Traceback" not in result.stderr
    document = CertDocument.model_validate_json(result.stdout)
    (judged,) = document.files
    assert len(judged.certificates) == 2
    problems = [f for f in judged.findings if f.code == "certificate_parse_problem"]
    assert problems and problems[0].cert_index == 0
    assert result.code == (2 if judged.verdict == "critical" else 1)
    table = run_process(*args)
    assert table.code == result.code
    assert "Traceback" not in table.stderr
    assert problems[0].message.split(": ", 1)[1][:30] in table.stdout.replace("\n", " ")

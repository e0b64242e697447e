"""``certvigil check`` behaves as a Nagios plugin against real loopback TLS servers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import TlsServer, closed_port
from certvigil.scan.options import utc_now
from tests.cli.scan_lab import Result, run_cli, run_process
from tests.support.fault_servers import SilentServer
from tests.support.ocsp_responder import GOOD, OcspResponder, RevocationServer, Revoked


@pytest.fixture(scope="module")
def root_file(pki: ThrowawayPki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab root in a PEM file, for --rootcert-file."""
    path = tmp_path_factory.mktemp("check") / "root.pem"
    path.write_bytes(pki.root.pem)
    return path


@contextmanager
def serving(pki: ThrowawayPki, leaf: IssuedCert) -> Iterator[str]:
    """A loopback TLS server sending ``leaf`` and the intermediate; yields ``localhost:PORT``."""
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as address:
        yield f"localhost:{address.port}"


def check(capsys: pytest.CaptureFixture[str], root_file: Path, *args: str) -> Result:
    """Run ``certvigil check ARGS --rootcert-file ROOT`` in this process."""
    return run_cli(capsys, "check", *args, "--rootcert-file", str(root_file))


def expiring_in(pki: ThrowawayPki, days: float) -> IssuedCert:
    """A localhost leaf whose notAfter is ``days`` from now."""
    now = datetime.now(UTC)
    return pki.issue_leaf(
        dns_names=("localhost",),
        not_before_utc=now - timedelta(days=30),
        not_after_utc=now + timedelta(days=days),
    )


def status_line(result: Result) -> str:
    """The first output line, asserting the output has the plugin's shape."""
    lines = result.stdout.splitlines()
    assert lines, result.stderr
    assert lines[0].startswith("CERTVIGIL "), result.stdout
    assert not any(line.startswith("CERTVIGIL") for line in lines[1:]), result.stdout
    assert result.stderr == ""
    return lines[0]


def test_valid_certificate_is_ok_with_perfdata(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, root_file: Path
) -> None:
    """A trusted, matching leaf 60 days from expiry is OK with days, times and chain length."""
    with serving(pki, expiring_in(pki, 60.5)) as endpoint:
        result = check(capsys, root_file, endpoint)
    assert result.code == 0
    line = status_line(result)
    summary, perfdata = line.split(" | ")
    assert summary.startswith(f"CERTVIGIL OK - {endpoint}: localhost expires in 60 days")
    items = perfdata.split(" ")
    assert items[0] == "days=60;20;15;;"
    assert items[-1] == "chain_length=2;;;0;"
    assert any(i.startswith("handshake_time=") and i.endswith("s;;;0;") for i in items)
    assert "certificate 0: subject CN=localhost" in result.stdout


@pytest.mark.parametrize(
    ("days", "code", "state"),
    [(18.5, 1, "WARNING"), (10.5, 2, "CRITICAL")],
)
def test_days_thresholds_give_warning_then_critical(
    capsys: pytest.CaptureFixture[str],
    pki: ThrowawayPki,
    root_file: Path,
    days: float,
    code: int,
    state: str,
) -> None:
    """Within -w 20 days is WARNING, within -c 15 days CRITICAL, with the days named."""
    with serving(pki, expiring_in(pki, days)) as endpoint:
        result = check(capsys, root_file, endpoint, "-w", "20", "-c", "15")
    assert result.code == code
    line = status_line(result)
    assert line.startswith(f"CERTVIGIL {state} - {endpoint}: certificate localhost expires in ")
    assert f"days={int(days)};20;15;;" in line


def test_custom_thresholds_move_the_boundary(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, root_file: Path
) -> None:
    """With -w 5 -c 2 a leaf 10 days from expiry is OK, and no line of the output says
    otherwise (the analysis' own 30-day expires_soon warning is not repeated)."""
    with serving(pki, expiring_in(pki, 10.5)) as endpoint:
        result = check(capsys, root_file, endpoint, "--warning", "5", "--critical", "2")
    assert result.code == 0, result.stdout
    assert "days=10;5;2;;" in status_line(result)
    assert "expires_soon" not in result.stdout
    assert "warning" not in result.stdout


def test_expired_certificate_is_critical(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, root_file: Path
) -> None:
    """An expired leaf is CRITICAL and the status line says it expired."""
    with serving(pki, expiring_in(pki, -3.5)) as endpoint:
        result = check(capsys, root_file, endpoint)
    assert result.code == 2
    line = status_line(result)
    assert line.startswith("CERTVIGIL CRITICAL - ")
    assert "expired" in line
    assert "days=-3;20;15;;" in line


def test_untrusted_chain_is_critical(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, root_file: Path
) -> None:
    """A chain from a PKI that is not trusted is CRITICAL, naming the untrusted issuer."""
    other = ThrowawayPki.create(root_name="Elsewhere Root CA")
    with serving(other, other.issue_leaf(dns_names=("localhost",))) as endpoint:
        result = check(capsys, root_file, endpoint)
    assert result.code == 2
    line = status_line(result)
    assert line.startswith("CERTVIGIL CRITICAL - ")
    assert "Elsewhere Root CA" in line


def test_wrong_host_is_critical(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, root_file: Path
) -> None:
    """A leaf for another name is CRITICAL; --sni with the right name makes it OK."""
    leaf = pki.issue_leaf(dns_names=("www.check.test",))
    with serving(pki, leaf) as endpoint:
        wrong = check(capsys, root_file, endpoint)
        right = check(capsys, root_file, endpoint, "--sni", "www.check.test")
    assert wrong.code == 2
    assert "localhost" in status_line(wrong) and "www.check.test" in status_line(wrong)
    assert right.code == 0, right.stdout


def test_closed_port_is_critical(capsys: pytest.CaptureFixture[str], root_file: Path) -> None:
    """A refused connection is CRITICAL (the service is down), as in check_ssl_cert."""
    with closed_port() as address:
        result = check(capsys, root_file, f"127.0.0.1:{address.port}")
    assert result.code == 2
    assert status_line(result).startswith(
        f"CERTVIGIL CRITICAL - 127.0.0.1:{address.port}: connection_refused"
    )


def test_time_out_is_unknown_and_holds() -> None:
    """A server that never answers gives UNKNOWN within the -t time-out (a real process)."""
    with SilentServer() as address:
        started = time.monotonic()
        result = run_process("check", f"127.0.0.1:{address.port}", "-t", "1.5", timeout_s=30)
        elapsed = time.monotonic() - started
    assert result.code == 3, result.stdout + result.stderr
    assert status_line(result).startswith(f"CERTVIGIL UNKNOWN - 127.0.0.1:{address.port}: ")
    assert "1.5 s time-out" in result.stdout
    # The process start-up (about 0.3 s) plus the 1.5 s budget, with room for a busy CI.
    assert elapsed < 5


def test_hostile_common_name_cannot_forge_output(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, root_file: Path
) -> None:
    """A CN with "|" and a newline stays escaped on one line: no fake perfdata, no fake state."""
    now = datetime.now(UTC)
    leaf = pki.issue_leaf(
        dns_names=("localhost",),
        common_name="evil | days=999;1;1\nCERTVIGIL OK - all fine",
        not_after_utc=now + timedelta(days=5),
    )
    with serving(pki, leaf) as endpoint:
        result = check(capsys, root_file, endpoint)
    assert result.code == 2
    line = status_line(result)
    assert line.count("|") == 1
    summary, perfdata = line.split(" | ")
    assert "evil \\x7c days=999;1;1\\x0aCERTVIGIL OK - all fine" in summary
    assert perfdata.startswith("days=4;20;15;;")
    assert all("|" not in detail for detail in result.stdout.splitlines()[1:])


def test_issuer_pattern(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, root_file: Path
) -> None:
    """--issuer matching the intermediate is OK; a pattern it does not match is CRITICAL."""
    with serving(pki, expiring_in(pki, 60)) as endpoint:
        matching = check(capsys, root_file, endpoint, "--issuer", "Test Intermediate")
        other = check(capsys, root_file, endpoint, "--issuer", "^CN=Let's Encrypt")
    assert matching.code == 0, matching.stdout
    assert other.code == 2
    assert "does not match ^CN=Let's Encrypt" in status_line(other)


def test_grade_below_runs_the_deep_probe(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, root_file: Path
) -> None:
    """--grade-below A+ is CRITICAL for an endpoint graded A (no HSTS); below B it is OK."""
    with serving(pki, expiring_in(pki, 60)) as endpoint:
        strict = check(capsys, root_file, endpoint, "--grade-below", "A+", "--require-no-tls1")
        lenient = check(capsys, root_file, endpoint, "--grade-below", "b")
    assert strict.code == 2, strict.stdout
    assert "grade A is below A+" in status_line(strict)
    assert lenient.code == 0, lenient.stdout
    assert "grade A" in status_line(lenient)


def test_revoked_leaf_is_critical_with_ocsp(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, root_file: Path
) -> None:
    """--ocsp asks the leaf's responder; a revoked answer is CRITICAL, a good one OK."""
    responder = OcspResponder(issuer=pki.intermediate.issued, clock=utc_now)
    with RevocationServer(responder=responder) as ocsp_server:
        good = pki.issue_leaf(dns_names=("localhost",), ocsp_urls=(ocsp_server.url("/ocsp"),))
        revoked = pki.issue_leaf(dns_names=("localhost",), ocsp_urls=(ocsp_server.url("/ocsp"),))
        responder.statuses[good.certificate.serial_number] = GOOD
        responder.statuses[revoked.certificate.serial_number] = Revoked(
            revoked_at_utc=utc_now() - timedelta(days=1)
        )
        with serving(pki, good) as endpoint:
            good_result = check(capsys, root_file, endpoint, "--ocsp")
        with serving(pki, revoked) as endpoint:
            revoked_result = check(capsys, root_file, endpoint, "--ocsp")
    assert good_result.code == 0, good_result.stdout
    assert revoked_result.code == 2
    assert "revoked" in status_line(revoked_result)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-w", "soon"], '-w/--warning "soon" is not a number'),
        (["-w", "5", "-c", "10"], "must not be more days than"),
        (["--grade-below", "Z"], '--grade-below "Z"'),
        (["--starttls", "gopher"], '--starttls "gopher"'),
        (["--issuer", "("], "is not a regular expression"),
        (["--bogus"], "unexpected argument '--bogus'"),
        (["-t", "0"], "-t/--timeout must be more than 0"),
        (["-w"], "Option '-w' requires an argument"),
    ],
)
def test_usage_errors_are_unknown(
    capsys: pytest.CaptureFixture[str], args: list[str], words: str
) -> None:
    """A bad option is UNKNOWN (exit 3) with the reason on the status line."""
    result = run_cli(capsys, "check", "localhost:1", *args)
    assert result.code == 3
    line = status_line(result)
    assert line.startswith("CERTVIGIL UNKNOWN - usage: ")
    assert words in line


def test_unreadable_rootcert_file_is_unknown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A --rootcert-file that holds no certificate is UNKNOWN, naming the file."""
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    result = run_cli(capsys, "check", "localhost:1", "--rootcert-file", str(junk))
    assert result.code == 3
    assert str(junk) in status_line(result)


def test_host_and_port_options(
    capsys: pytest.CaptureFixture[str], pki: ThrowawayPki, root_file: Path
) -> None:
    """check_ssl_cert's -H HOST -p PORT form works as HOST:PORT does."""
    with serving(pki, expiring_in(pki, 60)) as endpoint:
        port = endpoint.rsplit(":", 1)[1]
        result = check(capsys, root_file, "-H", "localhost", "-p", port)
    assert result.code == 0, result.stdout

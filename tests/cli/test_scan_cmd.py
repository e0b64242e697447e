"""``certvigil scan`` end to end against real TLS servers on 127.0.0.1."""

from __future__ import annotations

import csv
import io
import json
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import ServerAddress, StartTlsServer, TlsServer, closed_port
from certvigil.output.csv_rows import COLUMNS
from certvigil.output.json_schema import ScanDocument
from certvigil.targets.target import StartTLS
from tests.cli.scan_lab import Lab, Result, run_cli, run_process

NAME = "good.scan.test"
FAST = ("--connect-timeout", "2", "--handshake-timeout", "2", "--retries", "0")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    """A throwaway PKI with its root in a CA file."""
    pki = ThrowawayPki.create()
    ca_file = tmp_path_factory.mktemp("ca") / "root.pem"
    ca_file.write_bytes(pki.root.pem)
    return Lab(pki=pki, ca_file=ca_file)


def _serve(lab: Lab, name: str, **options: object) -> Iterator[ServerAddress]:
    leaf = lab.leaf(name, **options)
    with TlsServer(chain=lab.pki.served_chain_der(leaf), key_pem=leaf.key_pem) as address:
        yield address


@pytest.fixture(scope="module")
def good(lab: Lab) -> Iterator[ServerAddress]:
    """A server with a valid, trusted certificate for NAME."""
    yield from _serve(lab, NAME)


@pytest.fixture(scope="module")
def soon(lab: Lab) -> Iterator[ServerAddress]:
    """A server whose certificate for NAME expires in 20 days (a warning)."""
    yield from _serve(lab, NAME, not_after_utc=datetime.now(UTC) + timedelta(days=20))


@pytest.fixture(scope="module")
def expired(lab: Lab) -> Iterator[ServerAddress]:
    """A server whose certificate for NAME expired two days ago (critical)."""
    now = datetime.now(UTC)
    yield from _serve(
        lab,
        NAME,
        not_before_utc=now - timedelta(days=60),
        not_after_utc=now - timedelta(days=2),
    )


@pytest.fixture
def closed() -> Iterator[ServerAddress]:
    """A loopback port where nothing listens."""
    with closed_port() as address:
        yield address


def scan(capsys: pytest.CaptureFixture[str], lab: Lab, *args: str) -> Result:
    """Run ``certvigil scan`` trusting the lab root, with SNI NAME and short time-outs."""
    return run_cli(capsys, "scan", "--ca-file", str(lab.ca_file), "--sni", NAME, *FAST, *args)


# --- exit codes -----------------------------------------------------------------


def test_good_endpoint_exits_0_with_a_table_row(
    capsys: pytest.CaptureFixture[str], lab: Lab, good: ServerAddress
) -> None:
    """A trusted, valid endpoint gives a table row with verdict ok and exit code 0."""
    result = scan(capsys, lab, good.endpoint)
    assert result.code == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if good.endpoint in line)
    assert NAME in row and " ok " in row
    assert "1 endpoint: 1 ok" in result.stderr


def test_warning_exits_1(capsys: pytest.CaptureFixture[str], lab: Lab, soon: ServerAddress) -> None:
    """A certificate expiring within the 30-day threshold exits 1 and shows expires_soon."""
    result = scan(capsys, lab, soon.endpoint)
    assert result.code == 1, result.stderr
    assert "expires_soon" in result.stdout


def test_critical_exits_2(
    capsys: pytest.CaptureFixture[str], lab: Lab, expired: ServerAddress, good: ServerAddress
) -> None:
    """An expired certificate among good ones exits 2."""
    result = scan(capsys, lab, good.endpoint, expired.endpoint)
    assert result.code == 2, result.stderr
    assert "expired" in result.stdout


def test_unreachable_endpoint_exits_3(
    capsys: pytest.CaptureFixture[str], lab: Lab, good: ServerAddress, closed: ServerAddress
) -> None:
    """A port with nothing listening makes the scan exit 3 and is named as not checked."""
    result = scan(capsys, lab, good.endpoint, closed.endpoint)
    assert result.code == 3, result.stderr
    assert f"{closed.endpoint} (sni {NAME}): not checked: connection_refused" in result.stdout
    assert "1 not checked" in result.stderr


def test_critical_wins_over_unreachable(
    capsys: pytest.CaptureFixture[str], lab: Lab, expired: ServerAddress, closed: ServerAddress
) -> None:
    """Critical findings (2) take precedence over endpoints that could not be checked (3)."""
    assert scan(capsys, lab, expired.endpoint, closed.endpoint).code == 2


def test_threshold_option_changes_the_verdict(
    capsys: pytest.CaptureFixture[str], lab: Lab, soon: ServerAddress
) -> None:
    """With --threshold 10 a certificate 20 days from expiry is no longer a warning."""
    assert scan(capsys, lab, "--threshold", "10", soon.endpoint).code == 0


# --- malformed targets ----------------------------------------------------------


def test_malformed_target_is_reported_and_the_rest_are_scanned(
    capsys: pytest.CaptureFixture[str], lab: Lab, good: ServerAddress
) -> None:
    """A malformed target gets a one-line error naming its position; the others are scanned."""
    result = scan(capsys, lab, "--json", good.endpoint, "exa mple.com", f"{good.host}:99999")
    assert result.code == 3
    assert 'error: argv:2: "exa mple.com": contains white space' in result.stderr
    assert 'error: argv:3: "127.0.0.1:99999": port 99999 is outside 1-65535' in result.stderr
    document = ScanDocument.model_validate_json(result.stdout)
    assert [e.endpoint for e in document.endpoints] == [good.endpoint]
    assert [(e.position, e.reason) for e in document.target_errors] == [
        (2, "contains white space"),
        (3, "port 99999 is outside 1-65535"),
    ]
    assert document.summary.target_errors == 2
    assert document.summary.exit_code == 3


def test_only_malformed_targets_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], lab: Lab
) -> None:
    """When no target could be parsed at all, the exit code is 64."""
    result = scan(capsys, lab, "bad..name", "10.0.0.0/8")
    assert result.code == 64
    assert "--allow-large-cidr" in result.stderr
    assert result.stdout == ""


# --- output formats -------------------------------------------------------------


def test_json_document_has_the_documented_fields(
    capsys: pytest.CaptureFixture[str], lab: Lab, good: ServerAddress, closed: ServerAddress
) -> None:
    """--json writes one document on stdout, valid against the schema model, and nothing else."""
    result = scan(capsys, lab, "--json", "--progress", good.endpoint, closed.endpoint)
    document = json.loads(result.stdout)
    ScanDocument.model_validate(document)
    assert document["schema_version"] == 1
    assert document["command"] == "scan"
    by_endpoint = {e["endpoint"]: e for e in document["endpoints"]}
    observed = by_endpoint[good.endpoint]
    assert observed["status"] == "observed"
    assert observed["target"]["sni"] == NAME
    assert observed["hostname_matches"] is True
    assert observed["chain"]["is_trusted"] is True
    assert observed["observation"]["protocol"].startswith("TLSv1")
    assert observed["observation"]["chain_length"] == 2
    leaf = observed["certificates"][0]
    assert leaf["san_dns"] == [NAME]
    assert 85 <= leaf["days_remaining"] <= 90
    assert len(leaf["sha256_hex"]) == 64
    failed = by_endpoint[closed.endpoint]
    assert failed["status"] == "failed"
    assert failed["verdict"] == "unknown"
    assert failed["failure"]["kind"] == "connection_refused"
    assert document["summary"]["exit_code"] == result.code == 3


def test_csv_has_header_and_rows(
    capsys: pytest.CaptureFixture[str], lab: Lab, good: ServerAddress, expired: ServerAddress
) -> None:
    """--csv writes the documented header and one row per endpoint."""
    result = scan(capsys, lab, "--csv", good.endpoint, expired.endpoint)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert tuple(rows[0]) == COLUMNS
    verdicts = {row["endpoint"]: row["verdict"] for row in rows}
    assert verdicts == {good.endpoint: "ok", expired.endpoint: "critical"}


def test_output_file_receives_results(
    capsys: pytest.CaptureFixture[str], lab: Lab, good: ServerAddress, tmp_path: Path
) -> None:
    """--output writes the results to the file and nothing to stdout."""
    target = tmp_path / "report.json"
    result = scan(capsys, lab, "--json", "--output", str(target), good.endpoint)
    assert result.code == 0
    assert result.stdout == ""
    assert ScanDocument.model_validate_json(target.read_text()).summary.ok == 1


def test_table_keeps_input_order(
    capsys: pytest.CaptureFixture[str],
    lab: Lab,
    good: ServerAddress,
    soon: ServerAddress,
    expired: ServerAddress,
) -> None:
    """Table rows follow the order in which targets were given, not completion order."""
    result = scan(capsys, lab, expired.endpoint, good.endpoint, soon.endpoint)
    rows = [line for line in result.stdout.splitlines() if line.startswith("│ 127.0.0.1")]
    ports = [int(row.split(":")[1].split()[0]) for row in rows]
    assert ports == [expired.port, good.port, soon.port]


@pytest.mark.parametrize("output_format", ["--csv", "--json"])
def test_csv_and_json_keep_input_order(
    capsys: pytest.CaptureFixture[str],
    lab: Lab,
    good: ServerAddress,
    soon: ServerAddress,
    output_format: str,
) -> None:
    """A slow first endpoint comes first in CSV and JSON, though it finishes last."""
    leaf = lab.leaf(NAME)
    slow_server = TlsServer(
        chain=lab.pki.served_chain_der(leaf), key_pem=leaf.key_pem, hold_before_handshake_s=0.5
    )
    with slow_server as slow:
        result = scan(capsys, lab, output_format, slow.endpoint, good.endpoint, soon.endpoint)
    if output_format == "--csv":
        written = [row["endpoint"] for row in csv.DictReader(io.StringIO(result.stdout))]
    else:
        written = [e["endpoint"] for e in json.loads(result.stdout)["endpoints"]]
    assert written == [slow.endpoint, good.endpoint, soon.endpoint]


# --- target sources and options -------------------------------------------------


def test_targets_from_stdin_with_comments(lab: Lab, good: ServerAddress) -> None:
    """-f - reads targets from standard input, skipping comments and naming bad lines."""
    stdin = f"# endpoints\n{good.endpoint}  # the good one\n\n{good.host}:https\n"
    result = run_process(
        "scan",
        "-f",
        "-",
        "--ca-file",
        str(lab.ca_file),
        "--sni",
        NAME,
        *FAST,
        "--json",
        stdin=stdin,
    )
    assert result.code == 3, result.stderr
    assert f'error: -:4: "{good.host}:https": port "https" is not a number' in result.stderr
    document = ScanDocument.model_validate_json(result.stdout)
    assert [e.endpoint for e in document.endpoints] == [good.endpoint]
    assert document.target_errors[0].source == "-"


def test_targets_from_file_and_port_list(
    capsys: pytest.CaptureFixture[str], lab: Lab, good: ServerAddress, tmp_path: Path
) -> None:
    """-f FILE and -p apply together: a host without a port is tried on each listed port."""
    path = tmp_path / "targets.txt"
    path.write_text(f"{good.host}\n{good.endpoint}\n", encoding="utf-8")
    with closed_port() as closed:
        result = scan(capsys, lab, "--json", "-f", str(path), "-p", f"{good.port},{closed.port}")
    document = ScanDocument.model_validate_json(result.stdout)
    # The second line repeats the first expansion's first endpoint and is dropped.
    assert sorted(e.endpoint for e in document.endpoints) == sorted(
        [good.endpoint, f"127.0.0.1:{closed.port}"]
    )


def test_sni_override_decides_the_hostname_check(
    capsys: pytest.CaptureFixture[str], lab: Lab, good: ServerAddress
) -> None:
    """Without --sni an IP target is matched against the IP and the name check fails."""
    result = run_cli(capsys, "scan", "--ca-file", str(lab.ca_file), *FAST, good.endpoint)
    assert result.code == 2
    assert "hostname_mismatch" in result.stdout


def test_starttls_smtp(capsys: pytest.CaptureFixture[str], lab: Lab) -> None:
    """--starttls smtp upgrades a plain SMTP session and judges the certificate."""
    leaf = lab.leaf(NAME)
    server = StartTlsServer(
        StartTLS.SMTP, chain=lab.pki.served_chain_der(leaf), key_pem=leaf.key_pem
    )
    with server as address:
        result = scan(capsys, lab, "--json", "--starttls", "smtp", address.endpoint)
    assert result.code == 0, result.stderr
    endpoint = ScanDocument.model_validate_json(result.stdout).endpoints[0]
    assert endpoint.target.starttls == "smtp"
    assert endpoint.status == "observed"


def test_ipv6_loopback_target(capsys: pytest.CaptureFixture[str], lab: Lab) -> None:
    """A bracketed IPv6 literal with a port is scanned on ::1."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    leaf = lab.leaf(NAME)
    with TlsServer(
        chain=lab.pki.served_chain_der(leaf), key_pem=leaf.key_pem, host="::1"
    ) as address:
        result = scan(capsys, lab, f"[::1]:{address.port}")
    assert result.code == 0, result.stderr
    assert f"[::1]:{address.port}" in result.stdout


# --- usage errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--json", "--csv", "x.test"), "error: --json and --csv: choose one output format"),
        (("-p", "9010-9000", "x.test"), 'error: -p "9010-9000": port range 9010-9000 runs'),
        (("--sni", "bad name", "x.test"), 'error: --sni "bad name": invalid label'),
        ((), "error: no targets: give TARGET arguments or -f FILE"),
        (("-f", "/nonexistent/targets.txt"), "/nonexistent/targets.txt: cannot read target file"),
        (("--ca-file", "/nonexistent/ca.pem", "x.test"), "/nonexistent/ca.pem"),
        (("--starttls", "gopher", "x.test"), "error: "),
        (("--concurrency", "0", "x.test"), "error: "),
        (("--per-subnet", "0", "x.test"), "error: "),
        (("--threshold", "0", "x.test"), "positive numbers of days"),
    ],
)
def test_usage_errors_exit_64_with_one_line(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    """Bad options and unreadable files exit 64 with a one-line error and no traceback."""
    result = run_cli(capsys, "scan", *args)
    assert result.code == 64
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """--version prints the version and exits 0."""
    result = run_cli(capsys, "--version")
    assert result.code == 0
    assert result.stdout.startswith("certvigil ")


def test_unwritable_output_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], lab: Lab, good: ServerAddress, tmp_path: Path
) -> None:
    """--output naming a directory exits 64 before scanning, with a one-line error."""
    result = scan(capsys, lab, "--output", str(tmp_path), good.endpoint)
    assert result.code == 64
    assert f"error: {tmp_path}: cannot write output: " in result.stderr


def test_failed_write_is_one_line_error(
    capsys: pytest.CaptureFixture[str], lab: Lab, good: ServerAddress
) -> None:
    """A full device while writing results gives a one-line error and exit code 3."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    result = scan(capsys, lab, "--json", "--output", "/dev/full", good.endpoint)
    assert result.code == 3
    assert "error: /dev/full: cannot write results: No space left on device" in result.stderr
    assert "Traceback" not in result.stderr


def test_worker_processes_scan_every_target(
    capsys: pytest.CaptureFixture[str],
    lab: Lab,
    good: ServerAddress,
    expired: ServerAddress,
    closed: ServerAddress,
) -> None:
    """With --workers 2 every target is still reported once and the exit code holds."""
    result = scan(
        capsys, lab, "--workers", "2", "--json", good.endpoint, expired.endpoint, closed.endpoint
    )
    assert result.code == 2, result.stderr
    document = ScanDocument.model_validate_json(result.stdout)
    assert sorted(e.endpoint for e in document.endpoints) == sorted(
        [good.endpoint, expired.endpoint, closed.endpoint]
    )


def test_deadline_option_bounds_a_silent_endpoint(
    capsys: pytest.CaptureFixture[str], lab: Lab
) -> None:
    """``--deadline`` ends an endpoint that answers nothing before its handshake time-out."""
    from tests.support.fault_servers import SilentServer

    with SilentServer() as silent:
        started = time.perf_counter()
        result = run_cli(
            capsys, "scan", "--json", "--handshake-timeout", "30", "--deadline", "0.5",
            silent.endpoint,
        )  # fmt: skip
        elapsed_s = time.perf_counter() - started
    assert result.code == 3
    (endpoint,) = json.loads(result.stdout)["endpoints"]
    assert endpoint["failure"]["kind"] == "timeout"
    assert "deadline of 0.5 s" in endpoint["failure"]["detail"]
    assert elapsed_s < 5


def test_deadline_must_be_positive(capsys: pytest.CaptureFixture[str]) -> None:
    """A deadline of zero is a usage error naming the option."""
    result = run_cli(capsys, "scan", "--deadline", "0", "127.0.0.1")
    assert result.code == 64
    assert "--deadline" in result.stderr

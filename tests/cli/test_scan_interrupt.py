"""``certvigil scan`` stopped by SIGINT or SIGTERM keeps every finished result.

The real command line runs as a process against loopback servers: three answer at once,
six never answer (so the scan is in flight), and the signal arrives while those six wait.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import ServerAddress, TlsServer
from certvigil.output.json_schema import ScanDocument
from tests.support.fault_servers import SilentServer

GOOD = 3
SILENT = 6


@contextlib.contextmanager
def lab(pki: ThrowawayPki, leaf: IssuedCert) -> Iterator[tuple[list[str], list[SilentServer]]]:
    """Three good servers and six silent ones, and their targets in that order."""
    silent = [SilentServer() for _ in range(SILENT)]
    with contextlib.ExitStack() as stack:
        good: list[ServerAddress] = [
            stack.enter_context(TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem))
            for _ in range(GOOD)
        ]
        quiet = [stack.enter_context(server) for server in silent]
        targets = [f"localhost:{address.port}" for address in (*good, *quiet)]
        yield targets, silent


def start(
    tmp_path: Path, pki: ThrowawayPki, targets: list[str], *options: str
) -> subprocess.Popen[str]:
    """Start ``certvigil scan`` with long time-outs in its own process group."""
    ca_file = tmp_path / "root.pem"
    ca_file.write_bytes(pki.root.pem)
    command = [
        sys.executable, "-m", "certvigil", "scan", "--no-progress", "--ca-file", str(ca_file),
        "--handshake-timeout", "60", "--deadline", "120", *options, *targets,
    ]  # fmt: skip
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )


def wait_in_flight(silent: list[SilentServer], process: subprocess.Popen[str]) -> None:
    """Wait until every silent endpoint holds a connection (the good ones are done by then)."""
    deadline = time.monotonic() + 30
    while sum(server.connections_accepted for server in silent) < SILENT:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the scan never reached the silent endpoints"
        time.sleep(0.05)
    time.sleep(0.5)  # the three good endpoints were judged in milliseconds


def interrupt(
    process: subprocess.Popen[str], signum: signal.Signals, *, group: bool
) -> tuple[int, str, str, float]:
    """Send ``signum`` (to the whole group, as Ctrl-C does, when ``group``); wait for the end."""
    sent = time.monotonic()
    if group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    return process.returncode, stdout, stderr, time.monotonic() - sent


@pytest.mark.parametrize(
    ("signum", "group", "workers", "code"),
    [
        (signal.SIGINT, True, "1", 130),
        (signal.SIGTERM, False, "1", 143),
        (signal.SIGINT, True, "2", 130),
    ],
)
def test_interrupted_json_scan_writes_every_finished_result(
    tmp_path: Path,
    pki: ThrowawayPki,
    leaf: IssuedCert,
    signum: signal.Signals,
    group: bool,
    workers: str,
    code: int,
) -> None:
    """The ``-o`` file is a valid document with the finished endpoints and the interruption."""
    output = tmp_path / "scan.json"
    with lab(pki, leaf) as (targets, silent):
        process = start(tmp_path, pki, targets, "--json", "-o", str(output), "--workers", workers)
        wait_in_flight(silent, process)
        returncode, _stdout, stderr, took_s = interrupt(process, signum, group=group)
    assert returncode == code, stderr
    assert took_s < 6
    assert "Traceback" not in stderr
    document = ScanDocument.model_validate_json(output.read_text(encoding="utf-8"))
    assert [e.status for e in document.endpoints] == ["observed"] * GOOD
    assert [e.endpoint for e in document.endpoints] == targets[:GOOD]
    assert document.interrupted is not None
    assert document.interrupted.signal == signum.name
    assert document.interrupted.not_scanned == SILENT
    assert document.interrupted.input_read_to_end is True
    assert document.summary.exit_code == code
    assert f"interrupted by {signum.name}: {SILENT} not scanned" in stderr
    assert list(tmp_path.glob(".scan.json.*")) == []


@pytest.mark.parametrize("output_format", ["--csv", "table"])
def test_interrupted_csv_and_table_keep_what_finished(
    tmp_path: Path, pki: ThrowawayPki, leaf: IssuedCert, output_format: str
) -> None:
    """CSV and the table hold a row per finished endpoint after a SIGTERM."""
    options = [output_format] if output_format.startswith("--") else []
    with lab(pki, leaf) as (targets, silent):
        process = start(tmp_path, pki, targets, *options)
        wait_in_flight(silent, process)
        returncode, stdout, stderr, _took_s = interrupt(process, signal.SIGTERM, group=False)
    assert returncode == 143, stderr
    if output_format == "--csv":
        rows = list(csv.DictReader(io.StringIO(stdout)))
        assert [row["endpoint"] for row in rows] == targets[:GOOD]
    else:
        for target in targets[:GOOD]:
            assert target in stdout
        assert "127.0.0.10" not in stdout
    assert f"interrupted by SIGTERM: {SILENT} not scanned" in stderr


def test_killed_scan_leaves_the_previous_output_file_in_place(
    tmp_path: Path, pki: ThrowawayPki, leaf: IssuedCert
) -> None:
    """A scan killed outright (SIGKILL) never leaves a half-written ``-o`` file behind."""
    output = tmp_path / "scan.json"
    output.write_text('{"previous": "document"}\n', encoding="utf-8")
    with lab(pki, leaf) as (targets, silent):
        process = start(tmp_path, pki, targets, "--json", "-o", str(output))
        wait_in_flight(silent, process)
        interrupt(process, signal.SIGKILL, group=False)
    assert json.loads(output.read_text(encoding="utf-8")) == {"previous": "document"}


def test_finished_scan_replaces_the_output_file(
    tmp_path: Path, pki: ThrowawayPki, leaf: IssuedCert
) -> None:
    """A scan that ends normally renames its complete document over ``-o`` and cleans up."""
    output = tmp_path / "scan.json"
    output.write_text("old\n", encoding="utf-8")
    output.chmod(0o640)
    with lab(pki, leaf) as (targets, _silent):
        process = start(tmp_path, pki, targets[:GOOD], "--json", "-o", str(output))
        _stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 0, stderr
    document = ScanDocument.model_validate_json(output.read_text(encoding="utf-8"))
    assert document.interrupted is None
    assert len(document.endpoints) == GOOD
    assert output.stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root.pem", "scan.json"]

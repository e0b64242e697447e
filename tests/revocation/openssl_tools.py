"""Debian's openssl as a real OCSP responder and a real stapling TLS server, on loopback."""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

_START_TIMEOUT_S = 10.0


def _wait_for_port(process: subprocess.Popen[str]) -> int:
    """Read the child's output until it prints ``ACCEPT host:port``; return the port."""
    deadline = time.monotonic() + _START_TIMEOUT_S
    assert process.stdout is not None
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("ACCEPT"):
            address = line.split()[1]
            return int(address.rsplit(":", 1)[1])
    process.kill()
    raise RuntimeError(f"openssl did not start: {''.join(seen)!r}")


@contextlib.contextmanager
def _running(command: list[str], cwd: Path) -> Iterator[int]:
    process = subprocess.Popen(
        command,
        cwd=cwd,
        # s_server stops at end of input: an open, silent stdin keeps it serving.
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        port = _wait_for_port(process)
        # Keep reading what the child prints, so a full pipe never blocks it.
        drain = threading.Thread(target=_drain, args=(process,), daemon=True)
        drain.start()
        yield port
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


def _drain(process: subprocess.Popen[str]) -> None:
    stream = process.stdout
    if stream is None:
        return
    with contextlib.suppress(OSError, ValueError):
        for _line in stream:
            pass


def _index_time(moment: datetime) -> str:
    return moment.strftime("%y%m%d%H%M%SZ")


def index_line(
    serial: int,
    *,
    not_after_utc: datetime,
    revoked_at_utc: datetime | None = None,
    reason: str | None = None,
) -> str:
    """One line of an ``openssl ca`` index: ``V`` (valid) or ``R`` (revoked).

    ``openssl ocsp`` looks certificates up by serial only, so the subject is a placeholder.
    """
    serial_hex = format(serial, "X")
    serial_hex = serial_hex if len(serial_hex) % 2 == 0 else "0" + serial_hex
    expiry = _index_time(not_after_utc)
    if revoked_at_utc is None:
        return f"V\t{expiry}\t\t{serial_hex}\tunknown\t/CN=certvigil\n"
    when = _index_time(revoked_at_utc) + (f",{reason}" if reason else "")
    return f"R\t{expiry}\t{when}\t{serial_hex}\tunknown\t/CN=certvigil\n"


@contextlib.contextmanager
def openssl_ocsp_responder(
    directory: Path, *, index: str, ca_pem: bytes, signer_pem: bytes, signer_key_pem: bytes
) -> Iterator[str]:
    """``openssl ocsp`` answering from ``index``; yields its loopback URL.

    The responder binds every interface (``-port`` takes no address), but the tests only
    ever connect to it through 127.0.0.1.
    """
    (directory / "index.txt").write_text(index)
    (directory / "ca.pem").write_bytes(ca_pem)
    (directory / "rsigner.pem").write_bytes(signer_pem)
    (directory / "rkey.pem").write_bytes(signer_key_pem)
    command = [
        "openssl", "ocsp", "-index", "index.txt", "-port", "0", "-CA", "ca.pem",
        "-rsigner", "rsigner.pem", "-rkey", "rkey.pem", "-ndays", "1",
    ]  # fmt: skip
    with _running(command, directory) as port:
        yield f"http://127.0.0.1:{port}"


@contextlib.contextmanager
def openssl_stapling_server(
    directory: Path,
    *,
    cert_pem: bytes,
    chain_pem: bytes,
    key_pem: bytes,
    staple_der: bytes | None,
) -> Iterator[int]:
    """``openssl s_server`` on 127.0.0.1, stapling ``staple_der`` when given; yields the port."""
    (directory / "cert.pem").write_bytes(cert_pem)
    (directory / "chain.pem").write_bytes(chain_pem)
    (directory / "key.pem").write_bytes(key_pem)
    command = [
        "openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", "cert.pem",
        "-key", "key.pem", "-cert_chain", "chain.pem",
    ]  # fmt: skip
    if staple_der is not None:
        (directory / "staple.der").write_bytes(staple_der)
        command += ["-status_file", "staple.der"]
    with _running(command, directory) as port:
        yield port

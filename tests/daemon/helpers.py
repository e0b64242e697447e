"""Loopback parts for daemon tests: a PKI on disk, a counting webhook receiver, a daemon process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, Any

from certvigil.demo.pki import IssuedCert, ThrowawayPki
from tests.support.quiet_http import QuietHTTPServer


def expiring_leaf(pki: ThrowawayPki, *, days_left: float) -> IssuedCert:
    """A one-year leaf for localhost and 127.0.0.1 with ``days_left`` days to run."""
    now = datetime.now(UTC)
    return pki.issue_leaf(
        dns_names=("localhost",),
        ip_addresses=("127.0.0.1",),
        not_before_utc=now - timedelta(days=365 - days_left),
        not_after_utc=now + timedelta(days=days_left),
    )


@dataclass
class CountingReceiver:
    """A webhook receiver that counts deliveries by their delivery id.

    With ``hold_first`` it keeps the first request waiting (no answer) until
    ``release`` is set, and sets ``holding`` when that request has arrived. With
    ``delay_s`` it takes that long to answer every request (a slow receiver); with
    ``status`` it answers that code instead of 200 (a failing receiver).
    """

    port: int = 0
    hold_first: bool = False
    delay_s: float = 0.0
    status: int = 200
    ids: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self) -> str:
        """The route URL a configuration names."""
        return f"webhook+http://127.0.0.1:{self.port}/hook"

    def counts(self) -> Counter[str]:
        """Requests received per delivery id."""
        with self.lock:
            return Counter(self.ids)

    def key_counts(self) -> Counter[str]:
        """Requests received per idempotency key."""
        with self.lock:
            return Counter(self.keys)


@contextmanager
def counting_receiver(
    *, hold_first: bool = False, delay_s: float = 0.0, status: int = 200
) -> Iterator[CountingReceiver]:
    """Run a :class:`CountingReceiver` on 127.0.0.1 in a thread."""
    receiver = CountingReceiver(hold_first=hold_first, delay_s=delay_s, status=status)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                first = not receiver.ids
                receiver.ids.append(self.headers.get("X-Certvigil-Delivery-Id", "?"))
                receiver.keys.append(self.headers.get("Idempotency-Key", "?"))
                receiver.bodies.append(json.loads(body))
            if first and receiver.hold_first:
                receiver.holding.set()
                receiver.release.wait(30)
            if receiver.delay_s:
                time.sleep(receiver.delay_s)
            self.send_response(receiver.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = QuietHTTPServer(("127.0.0.1", 0), Handler)
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def write_config(
    directory: Path,
    *,
    root_pem: bytes,
    endpoints: Sequence[tuple[str, int, str | None]],
    route_url: str | None = None,
    concurrency: int = 8,
    interval: str = "1h",
    grace: str = "20s",
    default_checks: bool = False,
) -> Path:
    """A YAML configuration scanning ``endpoints`` (host, port, SNI) into ``inventory.db``.

    The certificate check only, unless ``default_checks`` keeps the default ``checks:``
    (revocation every scan, protocols and grade daily): the tests of the daemon's
    machinery need not wait for forty probe handshakes per endpoint.
    """
    (directory / "root.pem").write_bytes(root_pem)
    lines = [
        "database_url: inventory.db",
        f"scan: {{interval: {interval}, jitter: 0, timeout: 5s, concurrency: {concurrency},"
        f" shutdown_grace: {grace}}}",
        "trust: {public: false, ca_files: [root.pem]}",
    ]
    if not default_checks:
        lines.append("checks: {revocation: false, protocols: false, grade: false}")
    lines += ["alerts:", "  thresholds: [30, 14, 7, 1]"]
    if route_url:
        lines += ["  routes:", f"    - url: {route_url}", "      min_severity: info"]
    lines.append("targets:")
    for host, port, sni in endpoints:
        lines.append(f"  - host: {host}")
        lines.append(f"    port: {port}")
        if sni:
            lines.append(f"    sni: {sni}")
    path = directory / "certvigil.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


class DaemonProcess:
    """``certvigil run`` in a child process, with its JSON log lines read as they come."""

    def __init__(self, config: Path, *extra: str) -> None:
        argv = [sys.executable, "-m", "certvigil", "run", "--config", str(config)]
        argv += ["--log-format", "json", "--log-level", "debug", *extra]
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.records: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, args=(self.process.stderr,))
        self._reader.start()

    def _read(self, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                record = {"msg": "(not json)", "text": line}
            with self._lock:
                self.records.append(record)

    def messages(self, msg: str) -> list[dict[str, Any]]:
        """The log records with this message so far."""
        with self._lock:
            return [r for r in self.records if r.get("msg") == msg]

    def wait_for(self, msg: str, *, count: int = 1, timeout_s: float = 30.0) -> None:
        """Wait until ``count`` records with message ``msg`` were logged."""
        deadline = time.monotonic() + timeout_s
        while len(self.messages(msg)) < count:
            if self.process.poll() is not None and not self._reader.is_alive():
                raise AssertionError(f"daemon exited before logging {msg!r}: {self.records}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {count} x {msg!r} within {timeout_s}s: {self.records}")
            time.sleep(0.02)

    def signal(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the daemon."""
        os.kill(self.process.pid, signum)

    def wait(self, timeout_s: float = 60.0) -> int:
        """Wait for the daemon to exit; its exit code (negative: killed by a signal)."""
        code = self.process.wait(timeout_s)
        self._reader.join(10)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return code

    def kill(self) -> None:
        """SIGKILL the daemon if it still runs (test clean-up)."""
        if self.process.poll() is None:
            self.process.kill()
        self.wait()

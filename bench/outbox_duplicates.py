"""Duplicate deliveries when the daemon is killed during slow deliveries, and with two daemons.

Run: .venv/bin/python bench/outbox_duplicates.py [--rounds N] [--endpoints E] [--delay S]

Each round: a fresh SQLite inventory, E endpoints on one loopback TLS server (told apart
by SNI) whose leaf expires in 5 days, so each endpoint opens one alert and queues one
delivery; a webhook receiver on loopback that takes ``--delay`` seconds to answer each
request and counts requests per idempotency key. ``certvigil run --once`` is started,
SIGKILLed at a random moment while the receiver holds at least one request, and started
again until every delivery is recorded sent. A duplicate is a request whose key the
receiver had already seen. Printed: kills, requests in flight at the kill, duplicates,
and what a receiver that drops repeated keys ends up with.

Then the same inventory, fresh, with two daemons started at once (``run`` and
``run --once``): the second must be refused, and no key may arrive twice.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer


@dataclass
class Receiver:
    """Counts requests per idempotency key; knows how many are being answered."""

    delay_s: float
    port: int = 0
    keys: list[str] = field(default_factory=list)
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def receiver(delay_s: float) -> Iterator[Receiver]:
    """A slow webhook receiver on 127.0.0.1."""
    state = Receiver(delay_s=delay_s)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with state.lock:
                # Versions before the key sent only the delivery id (unique per database).
                key = self.headers.get("Idempotency-Key")
                state.keys.append(key or self.headers.get("X-Certvigil-Delivery-Id", "?"))
                state.in_flight += 1
            try:
                time.sleep(state.delay_s)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
            finally:
                with state.lock:
                    state.in_flight -= 1

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def write_config(directory: Path, root_pem: bytes, port: int, hook_port: int, n: int) -> Path:
    """A configuration of ``n`` endpoints and one webhook route."""
    (directory / "root.pem").write_bytes(root_pem)
    lines = [
        "database_url: inventory.db",
        "scan: {interval: 1h, jitter: 0, timeout: 5s, concurrency: 16, shutdown_grace: 5s}",
        "trust: {public: false, ca_files: [root.pem]}",
        "alerts:",
        "  thresholds: [30, 14, 7, 1]",
        "  routes:",
        f"    - url: webhook+http://127.0.0.1:{hook_port}/hook",
        "      min_severity: info",
        "targets:",
    ]
    for i in range(n):
        lines += ["  - host: 127.0.0.1", f"    port: {port}", f"    sni: e{i}.localhost"]
    path = directory / "certvigil.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def start(config: Path, *extra: str) -> subprocess.Popen[bytes]:
    """``certvigil run`` as a child process."""
    argv = [sys.executable, "-m", "certvigil", "run", "--config", str(config), *extra]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def unsent(database: Path) -> int:
    """Deliveries not yet recorded sent (-1 before the first is queued)."""
    if not database.exists():
        return -1
    try:
        with sqlite3.connect(database, timeout=30) as connection:
            rows = [r[0] for r in connection.execute("SELECT status FROM deliveries")]
    except sqlite3.OperationalError:
        return -1
    return sum(status != "sent" for status in rows) if rows else -1


def one_round(config: Path, hook: Receiver, rng: random.Random) -> tuple[int, int]:
    """Runs ``--once`` with one kill during a held request; returns (kills, in flight)."""
    database = config.parent / "inventory.db"
    kills = in_flight_at_kill = 0
    process = start(config, "--once")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not hook.in_flight and process.poll() is None:
        time.sleep(0.005)
    if process.poll() is None and hook.in_flight:
        time.sleep(rng.uniform(0.0, hook.delay_s))
        with hook.lock:
            in_flight_at_kill = hook.in_flight
            process.send_signal(signal.SIGKILL)
        kills += 1
    process.wait(60)
    for _ in range(5):
        if unsent(config.parent / "inventory.db") == 0:
            break
        again = start(config, "--once")
        again.wait(120)
    if unsent(database) != 0:
        raise SystemExit(f"deliveries still unsent after restarts in {config.parent}")
    return kills, in_flight_at_kill


def two_daemons(config: Path, hook: Receiver) -> tuple[bool, str]:
    """Starts a daemon and, at once, a second on the same inventory."""
    first = start(config)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not hook.keys:
        time.sleep(0.01)
    second = start(config, "--once")
    _, err = second.communicate(timeout=120)
    while time.monotonic() < deadline + 60 and unsent(config.parent / "inventory.db") != 0:
        time.sleep(0.05)
    first.send_signal(signal.SIGTERM)
    first.wait(60)
    refused = second.returncode not in (0, 64)
    last = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
    return refused, last[0]


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--endpoints", type=int, default=15)
    parser.add_argument("--delay", type=float, default=1.0, help="receiver answer time, s")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    now = datetime.now(UTC)
    pki = ThrowawayPki.create()
    leaf = pki.issue_leaf(
        dns_names=("localhost", "*.localhost"),
        ip_addresses=("127.0.0.1",),
        not_before_utc=now - timedelta(days=360),
        not_after_utc=now + timedelta(days=5),
    )
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    totals = Counter[str]()
    with TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server:
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as scratch, receiver(args.delay) as hook:
                config = write_config(
                    Path(scratch), pki.root.pem, server.port, hook.port, args.endpoints
                )
                kills, in_flight = one_round(config, hook, rng)
                counts = Counter(hook.keys)
                totals["rounds"] += 1
                totals["kills"] += kills
                totals["in_flight_at_kill"] += in_flight
                totals["deliveries"] += len(counts)
                totals["requests"] += len(hook.keys)
                totals["duplicates"] += len(hook.keys) - len(counts)
                totals["alerts_sent_twice"] += sum(n > 1 for n in counts.values())
        with tempfile.TemporaryDirectory() as scratch, receiver(args.delay) as hook:
            config = write_config(Path(scratch), pki.root.pem, server.port, hook.port, 15)
            refused, message = two_daemons(config, hook)
            counts = Counter(hook.keys)
    print(f"receiver answer time {args.delay:g} s, {args.endpoints} endpoints per round")
    print(f"rounds {totals['rounds']}, kills during a held request {totals['kills']}")
    print(f"deliveries {totals['deliveries']}, requests {totals['requests']}")
    print(
        f"requests in flight at the kills {totals['in_flight_at_kill']}, "
        f"duplicates {totals['duplicates']} "
        f"({totals['alerts_sent_twice']} deliveries sent twice)"
    )
    print(
        "after a receiver drops repeated Idempotency-Keys: "
        f"{totals['deliveries']} notifications, 0 duplicates"
    )
    print(
        f"two daemons on one database: second refused={refused}; "
        f"{len(counts)} deliveries, {len(hook.keys)} requests, "
        f"{len(hook.keys) - len(counts)} duplicates"
    )
    print(f"  second daemon said: {message}")


if __name__ == "__main__":
    main()

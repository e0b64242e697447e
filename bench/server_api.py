"""Server benchmark: report ingest, the expiring-certificates query, alert fan-out.

Fills a fresh inventory with ``--certificates`` certificates and ``--observations``
observations (``bench/store_ingest.py``'s bulk fill; default 100,000 and 1,000,000,
``--scale`` shrinks both), starts the real ``certvigil serve`` on 127.0.0.1 in a child
process, and measures from this process:

* ingest: ``POST /api/v1/reports`` in batches of 100 observation documents (real DER
  leaves from a throwaway CA, distinct endpoints), ``--ingest-clients`` at a time:
  observations stored per second, judged by the server, alerts included;
* the certificate list's SQL alone, in this process (no server, no page cache): first
  pages of several filters and sorts, and a late page reached through cursors;
* ``GET /api/v1/certificates?expiring_within=30`` (and a list sorted by issuer) from
  ``--clients`` (50) concurrent kept-alive connections, after one warm-up request on
  each: p50 and p99 latency;
* fan-out: ``--ws-clients`` WebSocket clients on ``/api/v1/alerts/stream``; one alert is
  acknowledged through the API; p50/p99/max of the time until each client has the event.

    .venv/bin/python bench/server_api.py --scale 0.01 --ws-clients 200   # small
    .venv/bin/python bench/server_api.py                                  # full size
    .venv/bin/python bench/server_api.py --db /var/tmp/cv.db              # fill once, reuse
    .venv/bin/python bench/server_api.py --postgresql --workers 2         # PostgreSQL, 2 processes

With ``--postgresql`` the inventory is a throwaway PostgreSQL server (fsync on) and the
ingest figures add its CPU per observation; ``--workers N`` runs ``certvigil serve
--workers N`` (PostgreSQL only, as the command requires). The server's CPU is that of
its whole process tree.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import resource
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import websockets
from cryptography.hazmat.primitives.serialization import Encoding

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from proc_cpu import postgres_cpu_s, tree_cpu_s
from store_ingest import fill
from tests.support.postgres import ThrowawayPostgres

from certvigil.analysis.model import Severity
from certvigil.demo.pki import KeySpec, ThrowawayPki, shared_key
from certvigil.observed.codec import observation_to_dict
from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.handshake import TlsObservation
from certvigil.server.keys import Scope, create_key
from certvigil.store import open_store
from certvigil.store import outbox as box
from certvigil.targets.target import Target


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def start_server(config: Path, *, workers: int = 1) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "certvigil", "serve", "-c", str(config)]
    command += ["--listen", "127.0.0.1:0", "--workers", str(workers)]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    ready = 0
    url = ""
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"listening on (http://\S+?)/?$", line.strip())
        if found:
            url = found.group(1)
        if "ready" in line:
            ready += 1
            if ready == workers:
                break
    return process, url


def observation_items(
    pki: ThrowawayPki, count: int, *, offset: int, now: datetime | None = None
) -> list[dict[str, Any]]:
    """Observation documents of ``count`` distinct endpoints, 20 distinct leaves valid
    60 to 440 days (one endpoint in twenty crosses an alert threshold, as in a fleet)."""
    return observation_items_of(
        served_chains(pki, 20), count, offset=offset, now=now or datetime.now(UTC)
    )


def served_chains(pki: ThrowawayPki, leaves: int) -> list[list[bytes]]:
    """The served chains (DER) of ``leaves`` leaves ``h{n}.bench.test`` under one key,
    valid 60 to 440 days in a cycle of twenty (one in twenty crosses an alert
    threshold, as in a fleet)."""
    key = shared_key(KeySpec.EC_P256)
    issued = [
        pki.issue_leaf(dns_names=(f"h{n}.bench.test",), key=key, valid_days=60 + 20 * (n % 20))
        for n in range(leaves)
    ]
    return [pki.served_chain_der(leaf) for leaf in issued]


def observation_items_of(
    chains: list[list[bytes]], count: int, *, offset: int, now: datetime
) -> list[dict[str, Any]]:
    """Observation documents of ``count`` distinct endpoints serving ``chains`` in turn
    (endpoint ``offset + n`` serves chain ``(offset + n) % len(chains)``)."""
    items = []
    for n in range(count):
        # Each endpoint an address of its own, asked for the name its leaf carries, so
        # the name matches and alerts come only from the leaves near a threshold.
        target = Target(
            host=f"10.{(offset + n) >> 16 & 255}.{(offset + n) >> 8 & 255}.{(offset + n) & 255}",
            port=443,
            sni=f"h{(offset + n) % len(chains)}.bench.test",
        )
        handshake = TlsObservation(
            target=target,
            peer_address=target.host,
            observed_at_utc=now,
            chain_der=tuple(chains[(offset + n) % len(chains)]),
            protocol="TLSv1.3",
            cipher="TLS_AES_128_GCM_SHA256",
            connect_s=0.001,
            handshake_s=0.002,
        )
        observation = EndpointObservation(target=target, observed_at_utc=now, handshake=handshake)
        items.append({**observation_to_dict(observation), "tags": ["bench"]})
    return items


async def bench_ingest(
    url: str,
    key: str,
    pki: ThrowawayPki,
    *,
    batches: int,
    clients: int,
    server_pid: int,
    pg: ThrowawayPostgres | None = None,
    leaves: int = 20,
    probe_key: str | None = None,
) -> list[tuple[str, float, float, float, list[float]]]:
    """Observations stored per second and server CPU per observation, for each round:
    the endpoints' first report, then the same endpoints reported again an hour later
    (an agent's next cycle: same endpoints, mostly the same certificates).

    With ``probe_key``, one more client asks for ``PROBE_PATH`` every ``PROBE_EVERY_S``
    while the batches go in: the latencies of a reader while the server ingests.

    The request bodies are encoded before the clock starts and sent over kept-alive
    connections by the minimal client, so the load generator takes little of the CPU
    the server is measured on.
    """
    root = pki.root.certificate.public_bytes(Encoding.PEM).decode()
    chains = served_chains(pki, leaves)
    started_at = datetime.now(UTC)
    # Endpoints of their own for this run: a run on a reused file (--db) would otherwise
    # report the last run's endpoints again, before the times that run recorded, and
    # time the alert rules' path for late reports.
    base = secrets.randbelow(160_000) * 100
    results = []
    for label, shift in (("first report", 0), ("reported again", 1)):
        now = started_at + timedelta(hours=shift)
        bodies = [
            json.dumps(
                {
                    "report_id": uuid.uuid4().hex,
                    "agent": {"name": "bench"},
                    "trust": {"public": False, "ca_pem": [root]},
                    "items": observation_items_of(chains, 100, offset=base + b * 100, now=now),
                }
            ).encode()
            for b in range(batches)
        ]
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        for body in bodies:
            queue.put_nowait(body)
        stored = 0

        async def worker(queue: asyncio.Queue[bytes]) -> None:
            nonlocal stored
            connection = KeepAliveClient(url, {"X-API-Key": key})
            await connection.connect()
            try:
                while not queue.empty():
                    body = queue.get_nowait()
                    status, answer = await asyncio.wait_for(
                        connection.request("POST", "/api/v1/reports", body), timeout=120
                    )
                    if status != 200:
                        raise RuntimeError(f"POST /api/v1/reports: HTTP {status}: {answer[:200]!r}")
                    stored += json.loads(answer)["accepted"]
            finally:
                await connection.close()

        probed: list[float] = []
        ingesting = asyncio.Event()

        async def probe(done: asyncio.Event, found: list[float]) -> None:
            assert probe_key is not None
            connection = KeepAliveClient(url, {"X-API-Key": probe_key})
            await connection.connect()
            try:
                while not done.is_set():
                    t0 = time.perf_counter()
                    status, _answer = await asyncio.wait_for(connection.get(PROBE_PATH), 60)
                    if status != 200:
                        raise RuntimeError(f"GET {PROBE_PATH}: HTTP {status}")
                    found.append(time.perf_counter() - t0)
                    await asyncio.sleep(PROBE_EVERY_S)
            finally:
                await connection.close()

        cpu_before = tree_cpu_s(server_pid)
        db_before = postgres_cpu_s(pg) if pg else 0.0
        started = time.perf_counter()
        prober = asyncio.create_task(probe(ingesting, probed)) if probe_key else None
        await asyncio.gather(*(worker(queue) for _ in range(clients)))
        elapsed = time.perf_counter() - started
        ingesting.set()
        if prober is not None:
            await prober
        server_us = (tree_cpu_s(server_pid) - cpu_before) / max(stored, 1) * 1e6
        db_us = ((postgres_cpu_s(pg) - db_before) / max(stored, 1) * 1e6) if pg else 0.0
        results.append((label, stored / elapsed, server_us, db_us, probed))
    return results


PROBE_PATH = "/api/v1/certificates?expiring_within=30&limit=20"
"""What the reader asks for while batches go in."""

PROBE_EVERY_S = 0.02
"""Its pause between two requests."""


class KeepAliveClient:
    """A minimal HTTP/1.1 client on one kept-alive connection.

    httpx spends more CPU per request than the server does (about 5 ms against 2.5 on
    this machine), and the load generator shares the two cores with the server: a
    lighter client leaves the server the CPU whose latency is being measured.
    """

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        host_port = url.removeprefix("http://").rstrip("/")
        self.host, _, port = host_port.rpartition(":")
        self.port = int(port)
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def get(self, path: str) -> tuple[int, bytes]:
        """Status and body of ``GET path`` (a deadline is the caller's)."""
        return await self.request("GET", path)

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        """Status and body of one request; ``body`` is sent as JSON when given."""
        assert self.reader is not None and self.writer is not None
        sent = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body else ""
        self.writer.write(
            f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n{self.headers}{sent}\r\n".encode()
            + body
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = {k.lower(): v.strip() for k, _, v in (x.partition(":") for x in lines[1:] if x)}
        if "content-length" in fields:
            return status, await self.reader.readexactly(int(fields["content-length"]))
        body = b""
        while True:  # chunked
            size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
            body += await self.reader.readexactly(size + 2)
            if size == 0:
                return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()


async def bench_get(
    url: str, key: str, path: str, *, requests: int, clients: int = 50
) -> list[float]:
    """Latencies of ``requests`` GETs of ``path`` from ``clients`` concurrent connections,
    after each connection has made one request (connections and server warm)."""
    connections = [KeepAliveClient(url, {"X-API-Key": key}) for _ in range(clients)]
    for connection in connections:
        await connection.connect()
    for connection in connections:
        status, body = await connection.get(path)
        if status != 200:
            raise RuntimeError(f"GET {path}: HTTP {status}: {body[:200]!r}")
    latencies: list[float] = []
    remaining = [requests]

    async def worker(connection: KeepAliveClient) -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            t0 = time.perf_counter()
            status, _body = await asyncio.wait_for(connection.get(path), timeout=120)
            latencies.append(time.perf_counter() - t0)
            if status != 200:
                raise RuntimeError(f"GET {path}: HTTP {status}")

    await asyncio.gather(*(worker(c) for c in connections))
    for connection in connections:
        await connection.close()
    return latencies


def query_alone(db: str, *, repeat: int = 5) -> list[tuple[str, float]]:
    """The certificate list's SQL without the server or its cache: median ms of pages."""
    from certvigil.store import server_queries as sq

    store = open_store(db)
    now = datetime.now(UTC)
    out = []
    try:
        cases: list[tuple[str, dict[str, Any]]] = [
            ("expiring_within=30, first page", {"expiring_within_days": 30.0}),
            ("all, sort=host, first page", {"sort": "host"}),
            ("all, sort=-issuer, first page", {"sort": "-issuer"}),
            ("all, tag=prod, host=*internal*", {"tag": "prod", "host_glob": "*internal*"}),
        ]
        for label, query in cases:
            runs = []
            for _ in range(repeat):
                t0 = time.perf_counter()
                with store.read() as connection:
                    sq.certificate_page(connection, now=now, limit=100, **query)
                runs.append(time.perf_counter() - t0)
            out.append((label, statistics.median(runs) * 1000))
        # Page 50 of the expiring list, reached through the cursors.
        after = None
        with store.read() as connection:
            for _ in range(49):
                _rows, after = sq.certificate_page(
                    connection, now=now, expiring_within_days=30.0, after=after, limit=20
                )
        runs = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            with store.read() as connection:
                sq.certificate_page(
                    connection, now=now, expiring_within_days=30.0, after=after, limit=20
                )
            runs.append(time.perf_counter() - t0)
        out.append(("expiring_within=30, page 50 of 20 by cursor", statistics.median(runs) * 1000))
    finally:
        store.close()
    return out


async def bench_fanout(
    url: str, key: str, admin: str, alert_id: int, *, clients: int
) -> list[float]:
    ws_url = url.replace("http://", "ws://") + "/api/v1/alerts/stream"
    connections = []
    for _ in range(clients):
        connections.append(
            await websockets.connect(ws_url, additional_headers={"X-API-Key": key}, open_timeout=60)
        )
    received: list[float] = []

    async def wait(ws: Any) -> None:
        await asyncio.wait_for(ws.recv(), timeout=120)
        received.append(time.perf_counter())

    waiters = [asyncio.create_task(wait(ws)) for ws in connections]
    await asyncio.sleep(0)
    async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": admin}) as c:
        t0 = time.perf_counter()
        (await c.post(f"/api/v1/alerts/{alert_id}/acknowledge")).raise_for_status()
        answered = time.perf_counter() - t0
    await asyncio.gather(*waiters)
    for ws in connections:
        await ws.close()
    print(f"(the acknowledgement itself was answered after {answered * 1000:.0f} ms)")
    return [r - t0 for r in received]


def forget_ingested(db: str, filled_up_to: int) -> None:
    """Delete the endpoints this run reported (their observations and deployments go
    with them), so that a reused file stays at the size it was filled to and every run
    measures the same inventory."""
    started = time.perf_counter()
    store = open_store(db)
    try:
        with store.write() as connection:
            deleted = connection.exec_driver_sql(
                "DELETE FROM endpoints WHERE id > ?", (filled_up_to,)
            ).rowcount
    finally:
        store.close()
    print(
        f"reused file: the run's {deleted:,} endpoints deleted again "
        f"in {time.perf_counter() - started:.0f} s",
        flush=True,
    )


def load() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--ingest-batches", type=int, default=50)
    parser.add_argument("--ingest-clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50, help="Concurrent GET clients.")
    parser.add_argument("--ws-clients", type=int, default=1000)
    parser.add_argument(
        "--leaves",
        type=int,
        default=20,
        help="Distinct leaves the reporting endpoints serve, in turn (20; as many as the "
        "endpoints, --ingest-batches x 100: each endpoint its own).",
    )
    parser.add_argument(
        "--db",
        type=Path,
        help="SQLite file to fill once and reuse in later runs (else a temporary one).",
    )
    parser.add_argument(
        "--postgresql",
        action="store_true",
        help="A throwaway PostgreSQL server (fsync on) instead of SQLite.",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="Server processes (more than 1: PostgreSQL)."
    )
    args = parser.parse_args()
    if args.workers > 1 and not args.postgresql:
        parser.error("--workers above 1 needs --postgresql (as certvigil serve does)")
    if args.postgresql and args.db:
        parser.error("--db names a SQLite file: not with --postgresql")
    # Each WebSocket client holds a socket here and one in the server (a child, which
    # inherits the limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.ws_clients + 256)), hard)
    )
    certificates = int(100_000 * args.scale)
    observations = int(1_000_000 * args.scale)
    print(f"load average at start: {load()}", flush=True)
    with contextlib.ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        pg: ThrowawayPostgres | None = None
        if args.postgresql:
            pg = stack.enter_context(ThrowawayPostgres(durable=True))
            db = path = pg.create_database("bench")
        else:
            path = args.db or directory / "server.db"
            db = f"sqlite:///{path}"
        store = open_store(db)
        with store.read() as connection:
            filled = connection.exec_driver_sql("SELECT count(*) FROM endpoints").scalar_one()
        if filled:
            with store.read() as connection:
                stored = connection.exec_driver_sql("SELECT count(*) FROM observations")
                print(
                    f"fill: reusing {path} ({filled:,} endpoints, "
                    f"{stored.scalar_one():,} observations)",
                    flush=True,
                )
        else:
            t0 = time.perf_counter()
            fill(
                store,
                endpoints=max(1, certificates // 5),
                certificates=certificates,
                observations=observations,
                now=datetime.now(UTC),
            )
            print(
                f"fill: {certificates:,} certificates, {observations:,} observations "
                f"in {time.perf_counter() - t0:.0f} s (load {load()})",
                flush=True,
            )
        with store.read() as connection:
            filled_up_to = connection.exec_driver_sql(
                "SELECT coalesce(max(id), 0) FROM endpoints"
            ).scalar_one()
        now = datetime.now(UTC)
        tag = uuid.uuid4().hex[:8]
        agent = create_key(store, name=f"bench-agent-{tag}", scope=Scope.AGENT, now=now).token
        reader = create_key(store, name=f"bench-read-{tag}", scope=Scope.READ, now=now).token
        admin = create_key(store, name=f"bench-admin-{tag}", scope=Scope.ADMIN, now=now).token
        with store.write() as connection:
            alert, _ = box.open_alert_if_absent(
                connection,
                dedup_key=f"bench-{tag}",
                kind="bench",
                severity=Severity.INFO,
                summary="fan-out",
                now=now,
            )
        store.close()
        for label, ms in query_alone(db):
            print(f"SQL alone (no server, no cache): {label}: {ms:.1f} ms", flush=True)
        config = directory / "server.yaml"
        config.write_text(json.dumps({"database_url": db}), encoding="utf-8")
        process, url = start_server(config, workers=args.workers)
        try:
            pki = ThrowawayPki.create()
            rounds = asyncio.run(
                bench_ingest(
                    url,
                    agent,
                    pki,
                    batches=args.ingest_batches,
                    clients=args.ingest_clients,
                    server_pid=process.pid,
                    pg=pg,
                    leaves=args.leaves,
                    probe_key=reader,
                )
            )
            for label, rate, server_us, db_us, probed in rounds:
                database = f", PostgreSQL CPU {db_us:.0f} us/observation" if pg else ""
                print(
                    f"ingest, {label}: {rate:,.0f} observations/s, server CPU "
                    f"{server_us:.0f} us/observation{database} ({args.ingest_batches} "
                    f"batches of 100, {args.ingest_clients} clients, {args.workers} "
                    f"server process{'es' if args.workers > 1 else ''}, load {load()})",
                    flush=True,
                )
                if probed:
                    print(
                        f"  a reader meanwhile (GET {PROBE_PATH} every "
                        f"{PROBE_EVERY_S * 1000:.0f} ms, {len(probed)} requests): "
                        f"p50 {percentile(probed, 0.5) * 1000:.0f} ms, "
                        f"p99 {percentile(probed, 0.99) * 1000:.0f} ms, "
                        f"max {max(probed) * 1000:.0f} ms",
                        flush=True,
                    )
            for path_query in (
                "/api/v1/certificates?expiring_within=30",
                "/api/v1/certificates?sort=-issuer&limit=50",
            ):
                cpu_before = tree_cpu_s(process.pid)
                started = time.perf_counter()
                latencies = asyncio.run(
                    bench_get(url, reader, path_query, requests=args.requests, clients=args.clients)
                )
                wall = time.perf_counter() - started
                # Under other load the latencies measure the machine as much as the
                # server; its CPU time per request does not depend on the load.
                server_ms = (tree_cpu_s(process.pid) - cpu_before) / (args.requests + args.clients)
                print(
                    f"GET {path_query}, {args.clients} clients, {args.requests} requests: "
                    f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
                    f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
                    f"{(args.requests + args.clients) / wall:.0f} requests/s, "
                    f"server CPU {server_ms * 1000:.2f} ms/request (load {load()})",
                    flush=True,
                )
            fan = asyncio.run(bench_fanout(url, reader, admin, alert.id, clients=args.ws_clients))
            print(
                f"fan-out to {args.ws_clients} WebSocket clients: "
                f"p50 {statistics.median(fan) * 1000:.0f} ms, "
                f"p99 {percentile(fan, 0.99) * 1000:.0f} ms, max {max(fan) * 1000:.0f} ms "
                f"(load {load()})"
            )
        finally:
            process.terminate()
            process.wait(30)
            if args.db:
                forget_ingested(db, filled_up_to)
    print("(figures taken on a shared 2-core machine under other load: indicative only)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

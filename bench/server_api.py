"""Server benchmark: report ingest, the expiring-certificates query, alert fan-out.

Fills a fresh inventory with ``--certificates`` certificates and ``--observations``
observations (``bench/store_ingest.py``'s bulk fill; default 100,000 and 1,000,000,
``--scale`` shrinks both), starts the real ``certvigil serve`` on 127.0.0.1 in a child
process, and measures from this process:

* ingest: ``POST /api/v1/reports`` in batches of 100 observation documents (real DER
  leaves from a throwaway CA, distinct endpoints), ``--ingest-clients`` at a time:
  observations stored per second, judged by the server, alerts included;
* ``GET /api/v1/certificates?expiring_within=30`` from 50 concurrent clients:
  p50 and p99 latency;
* fan-out: ``--ws-clients`` WebSocket clients on ``/api/v1/alerts/stream``; one alert is
  acknowledged through the API; p50/p99/max of the time until each client has the event.

    .venv/bin/python bench/server_api.py --scale 0.01 --ws-clients 200   # small
    .venv/bin/python bench/server_api.py                                  # full size
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import websockets
from cryptography.hazmat.primitives.serialization import Encoding

sys.path.insert(0, str(Path(__file__).resolve().parent))

from store_ingest import fill

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


def start_server(config: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "certvigil", "serve", "-c", str(config), "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    url = ""
    assert process.stderr is not None
    for line in process.stderr:
        found = re.search(r"listening on (http://\S+?)/?$", line.strip())
        if found:
            url = found.group(1)
        if "ready" in line:
            break
    return process, url


def observation_items(pki: ThrowawayPki, count: int, *, offset: int) -> list[dict[str, Any]]:
    """Observation documents of ``count`` distinct endpoints, 20 distinct leaves valid
    60 to 440 days (one endpoint in twenty crosses an alert threshold, as in a fleet)."""
    now = datetime.now(UTC)
    key = shared_key(KeySpec.EC_P256)
    leaves = [
        pki.issue_leaf(dns_names=(f"h{n}.bench.test",), key=key, valid_days=60 + 20 * n)
        for n in range(20)
    ]
    chains = [pki.served_chain_der(leaf) for leaf in leaves]
    items = []
    for n in range(count):
        target = Target(
            host=f"10.{(offset + n) >> 16 & 255}.{(offset + n) >> 8 & 255}.{(offset + n) & 255}",
            port=443,
        )
        handshake = TlsObservation(
            target=target,
            peer_address=target.host,
            observed_at_utc=now,
            chain_der=tuple(chains[n % len(chains)]),
            protocol="TLSv1.3",
            cipher="TLS_AES_128_GCM_SHA256",
            connect_s=0.001,
            handshake_s=0.002,
        )
        observation = EndpointObservation(target=target, observed_at_utc=now, handshake=handshake)
        items.append({**observation_to_dict(observation), "tags": ["bench"]})
    return items


async def bench_ingest(
    url: str, key: str, pki: ThrowawayPki, *, batches: int, clients: int
) -> float:
    root = pki.root.certificate.public_bytes(Encoding.PEM).decode()
    bodies = [
        {
            "report_id": uuid.uuid4().hex,
            "agent": {"name": "bench"},
            "trust": {"public": False, "ca_pem": [root]},
            "items": observation_items(pki, 100, offset=b * 100),
        }
        for b in range(batches)
    ]
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    stored = 0

    async def worker() -> None:
        nonlocal stored
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=120) as c:
            while not queue.empty():
                body = queue.get_nowait()
                answer = (await c.post("/api/v1/reports", json=body)).json()
                stored += answer["accepted"]

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed = time.perf_counter() - started
    return stored / elapsed


async def bench_expiring(url: str, key: str, *, requests: int, clients: int = 50) -> list[float]:
    latencies: list[float] = []
    remaining = [requests]

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=url, headers={"X-API-Key": key}, timeout=120) as c:
            while remaining[0] > 0:
                remaining[0] -= 1
                t0 = time.perf_counter()
                response = await c.get("/api/v1/certificates", params={"expiring_within": 30})
                response.raise_for_status()
                latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies


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
    await asyncio.gather(*waiters)
    for ws in connections:
        await ws.close()
    return [r - t0 for r in received]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--ingest-batches", type=int, default=50)
    parser.add_argument("--ingest-clients", type=int, default=4)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--ws-clients", type=int, default=1000)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(
        resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.ws_clients + 256)), hard)
    )
    certificates = int(100_000 * args.scale)
    observations = int(1_000_000 * args.scale)
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        db = f"sqlite:///{directory / 'server.db'}"
        store = open_store(db)
        t0 = time.perf_counter()
        fill(
            store,
            endpoints=max(1, certificates // 5),
            certificates=certificates,
            observations=observations,
        )
        print(
            f"fill: {certificates:,} certificates, {observations:,} observations "
            f"in {time.perf_counter() - t0:.0f} s",
            flush=True,
        )
        now = datetime.now(UTC)
        agent = create_key(store, name="bench-agent", scope=Scope.AGENT, now=now).token
        reader = create_key(store, name="bench-read", scope=Scope.READ, now=now).token
        admin = create_key(store, name="bench-admin", scope=Scope.ADMIN, now=now).token
        with store.write() as connection:
            alert, _ = box.open_alert_if_absent(
                connection,
                dedup_key="bench",
                kind="bench",
                severity=Severity.INFO,
                summary="fan-out",
                now=now,
            )
        store.close()
        config = directory / "server.yaml"
        config.write_text(json.dumps({"database_url": db}), encoding="utf-8")
        process, url = start_server(config)
        try:
            pki = ThrowawayPki.create()
            rate = asyncio.run(
                bench_ingest(
                    url, agent, pki, batches=args.ingest_batches, clients=args.ingest_clients
                )
            )
            print(
                f"ingest: {rate:,.0f} observations/s "
                f"({args.ingest_batches} batches of 100, {args.ingest_clients} clients)"
            )
            latencies = asyncio.run(bench_expiring(url, reader, requests=args.requests))
            print(
                f"GET certificates?expiring_within=30, 50 clients, {args.requests} requests: "
                f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms"
            )
            fan = asyncio.run(bench_fanout(url, reader, admin, alert.id, clients=args.ws_clients))
            print(
                f"fan-out to {args.ws_clients} WebSocket clients: "
                f"p50 {statistics.median(fan) * 1000:.0f} ms, "
                f"p99 {percentile(fan, 0.99) * 1000:.0f} ms, max {max(fan) * 1000:.0f} ms"
            )
        finally:
            process.terminate()
            process.wait(30)
    print("(figures taken on a shared 2-core machine under other load: indicative only)")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()

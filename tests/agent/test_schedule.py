"""The agent scans on the daemon's schedule, and a restart remembers what ran when.

Real TLS servers on loopback; the server is away (a closed loopback port), so what each
cycle queued stays in the outbox to be read back. Time is moved by hand through the
agent's two clock seams (monotonic seconds for the schedule, UTC for the outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from certvigil.agent.client import ServerClient, ServerUrls
from certvigil.agent.outbox import AgentOutbox
from certvigil.agent.runner import Agent, CycleStats
from certvigil.config.loading import load_config
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.server.app import create_app
from certvigil.server.keys import Scope
from certvigil.store import open_store
from certvigil.store.models import ENDPOINTS, OBSERVATIONS
from certvigil.store.server_models import RECEIVED_REPORTS
from tests.server.conftest import make_key, root_pem_file, write_server_config
from tests.support.live_app import serve_app


@dataclass
class Clocks:
    """The agent's monotonic and wall clocks, moved together by the test."""

    monotonic_s: float = 1000.0
    wall: datetime = field(default_factory=lambda: datetime.now(UTC))

    def advance(self, seconds: float) -> None:
        self.monotonic_s += seconds
        self.wall += timedelta(seconds=seconds)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def ports(pki: ThrowawayPki, leaf: IssuedCert) -> Iterator[list[int]]:
    """Two TLS endpoints on 127.0.0.1."""
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(
                TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem)
            ).port
            for _ in range(2)
        ]


@pytest.fixture
def config(tmp_path: Path, pki: ThrowawayPki, ports: list[int]) -> Path:
    """Endpoint A every 60 s, B every 600 s; revocation every 900 s; no protocol probes."""
    path = tmp_path / "agent.yaml"
    document = {
        "server": {
            "url": f"http://127.0.0.1:{_closed_port()}",
            "key": "cvk_unused",
            "name": "lab",
            "outbox": "lab.outbox.db",
        },
        "trust": {"public": False, "ca_files": [str(root_pem_file(pki, tmp_path))]},
        "scan": {"timeout": 2, "jitter": 0, "interval": 60},
        "checks": {"revocation": {"interval": 900}, "protocols": False, "grade": False},
        "targets": [
            {"host": "127.0.0.1", "port": ports[0]},
            {"host": "127.0.0.1", "port": ports[1], "interval": 600},
        ],
    }
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def _cycle(config: Path, clocks: Clocks, *, once: bool = False) -> tuple[CycleStats, list[Any]]:
    """One cycle of a new agent on the same outbox; the items it queued."""
    loaded = load_config(config)
    outbox = AgentOutbox(config.parent / "lab.outbox.db", max_bytes=10_000_000)
    outbox.backlog()  # creates the file's tables
    before = _queued(config)

    async def run() -> CycleStats:
        link = loaded.config.server
        assert link is not None and link.url is not None and link.key is not None
        client = ServerClient(ServerUrls.from_configured(link.url), link.key)
        agent = Agent(
            loaded,
            client=client,
            outbox=outbox,
            name="lab",
            clock=lambda: clocks.wall,
            monotonic=lambda: clocks.monotonic_s,
            rng=random.Random(7),
            retry_s=(0.01, 0.01),
        )
        try:
            if once:
                return await agent.run(once=True)
            return await agent.run_cycle(drain_deadline_s=0)
        finally:
            await client.aclose()

    try:
        stats = asyncio.run(run())
        return stats, _queued(config)[len(before) :]
    finally:
        outbox.close()


def _queued(config: Path) -> list[Any]:
    """Every observation waiting in the outbox file, in order; ``None`` for an empty batch."""
    with contextlib.closing(sqlite3.connect(config.parent / "lab.outbox.db")) as db:
        rows = db.execute("SELECT body FROM batches ORDER BY seq").fetchall()
    items: list[Any] = []
    for (body,) in rows:
        batch = json.loads(body)
        items += [item["observation"] for item in batch] if batch else [None]
    return items


def _ports_of(items: list[Any]) -> list[int]:
    return sorted(item["target"]["port"] for item in items if item is not None)


def test_each_target_and_check_keeps_its_own_interval(config: Path, ports: list[int]) -> None:
    """A every 60 s, B every 600 s, revocation every 300 s: each cycle scans what is due."""
    clocks = Clocks()
    # A single long-running agent: one Agent instance across cycles.
    loaded = load_config(config)
    outbox = AgentOutbox(config.parent / "lab.outbox.db", max_bytes=10_000_000)
    outbox.backlog()  # creates the file's tables
    seen: list[tuple[int, list[Any]]] = []

    async def run() -> None:
        link = loaded.config.server
        assert link is not None and link.url is not None and link.key is not None
        client = ServerClient(ServerUrls.from_configured(link.url), link.key)
        agent = Agent(
            loaded,
            client=client,
            outbox=outbox,
            name="lab",
            clock=lambda: clocks.wall,
            monotonic=lambda: clocks.monotonic_s,
            rng=random.Random(7),
            retry_s=(0.01, 0.01),
        )
        try:
            for step in range(16):
                clocks.advance(61 if step else 0)
                before = len(_queued(config))
                stats = await agent.run_cycle(drain_deadline_s=0)
                seen.append((stats.due, _queued(config)[before:]))
        finally:
            await client.aclose()

    try:
        asyncio.run(run())
    finally:
        outbox.close()
    scanned = [_ports_of(items) for _, items in seen]
    both, only_a = sorted(ports), [ports[0]]
    # Cycle i runs at t = 61 i. A is due every cycle; B at t=0, then at t=610 (its 600
    # s), then at t=915 because its revocation check (900 s) is due, which scans it.
    assert scanned == [both, *[only_a] * 9, both, *[only_a] * 4, both]
    with_revocation = [
        sorted(i["target"]["port"] for i in items if i is not None and i["revocation"])
        for _, items in seen
    ]
    assert with_revocation[0] == both
    assert [i for i, r in enumerate(with_revocation) if r] == [0, 15]
    assert with_revocation[15] == both


def test_a_restart_scans_only_what_is_due(config: Path, ports: list[int]) -> None:
    """Run times survive in the outbox: a new agent 10 s later scans nothing; 61 s later
    it scans A alone."""
    clocks = Clocks()
    first, items = _cycle(config, clocks)
    assert first.due == 2 and _ports_of(items) == sorted(ports)

    clocks.monotonic_s = 5.0  # a new process: a new monotonic origin
    clocks.wall += timedelta(seconds=10)
    again, items = _cycle(config, clocks)
    assert again.due == 0
    assert items == []  # the first batch still waits for the server: no heartbeat needed

    clocks.advance(51)
    later, items = _cycle(config, clocks)
    assert later.due == 1 and _ports_of(items) == [ports[0]]
    # Revocation (every 900 s) is not due yet after 61 s.
    assert all(item["revocation"] is None for item in items if item is not None)


def test_once_runs_every_due_target_once(tmp_path: Path, config: Path, ports: list[int]) -> None:
    """--once on a new outbox scans every endpoint once and sends it to the server; a
    second run with nothing due sends an empty batch, so the server sees the contact."""
    url = f"sqlite:///{tmp_path / 'server.db'}"
    open_store(url).close()
    loaded = load_config(write_server_config(tmp_path, url))
    with open_store(loaded.database_url) as store:
        key = make_key(store, "lab", Scope.AGENT)
        with serve_app(create_app(loaded, store, poll_s=0.05)) as base:
            document = yaml.safe_load(config.read_text(encoding="utf-8"))
            document["server"] |= {"url": base, "key": key}
            config.write_text(yaml.safe_dump(document), encoding="utf-8")
            clocks = Clocks()
            stats, _ = _cycle(config, clocks, once=True)
            clocks.advance(10)
            idle, _ = _cycle(config, clocks, once=True)
        with store.read() as connection:
            observations = connection.execute(
                select(func.count()).select_from(OBSERVATIONS)
            ).scalar()
            stored = connection.execute(select(ENDPOINTS.c.port).order_by(ENDPOINTS.c.port)).all()
            batches = connection.execute(
                select(func.count()).select_from(RECEIVED_REPORTS)
            ).scalar()
    assert (stats.due, stats.queued, stats.backlog) == (2, 2, 0)
    assert (idle.due, idle.queued, idle.sent, idle.backlog) == (0, 0, 1, 0)
    assert batches == 2
    assert observations == 2
    assert [row.port for row in stored] == sorted(ports)

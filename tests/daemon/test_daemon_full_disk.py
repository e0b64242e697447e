"""A full disk under the database: the daemon keeps scanning, keeps results, tells, recovers.

Two ways to fill it, each a real SQLITE_FULL: a 6 MiB tmpfs mounted for the test and
filled with a file until the kernel answers ENOSPC (root only; skipped where mount is
not permitted), and, everywhere, SQLite's own ``PRAGMA max_page_count`` set on every
connection to the database's current size.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from certvigil.config import load_config
from certvigil.config.expand import expand_targets
from certvigil.daemon.runner import Daemon
from certvigil.daemon.unwritable import STORE_ALERT_KIND, PendingWrite, WriteBuffer
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.scan.options import ScanOptions
from certvigil.store import AlertState, Store, open_store
from tests.daemon.helpers import counting_receiver, expiring_leaf, write_config


def _mount_tmpfs(mount_point: Path) -> None:
    mount_point.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs not permitted here: {done.stderr.strip()}")


def fill(directory: Path) -> Path:
    """Writes a file into ``directory`` until the file system is full (unbuffered)."""
    filler = directory / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 1):
            try:
                while True:
                    os.write(descriptor, b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    finally:
        os.close(descriptor)
    return filler


@dataclass
class Disk:
    """Where the database lives, and how to make it full and free again."""

    directory: Path
    kind: str
    _filler: Path | None = None
    _limit: list[int] = field(default_factory=list)

    def fill(self, store: Store) -> None:
        """No more room for the database."""
        if self.kind == "tmpfs":
            self._filler = fill(self.directory)
            return
        # Pack every page full first, so the next write needs a new page wherever it
        # lands, then allow no page beyond the current ones.
        raw = store.engine.raw_connection()
        try:
            raw.driver_connection.execute("VACUUM")
            pages = int(raw.driver_connection.execute("PRAGMA page_count").fetchone()[0])
        finally:
            raw.close()
        if not self._limit:

            @event.listens_for(store.engine, "connect")
            def _limit(dbapi_connection: Any, _record: Any) -> None:
                if self._limit[0]:
                    dbapi_connection.execute(f"PRAGMA max_page_count={self._limit[0]}")

            self._limit.append(pages)
        self._limit[0] = pages
        store.engine.dispose()

    def free(self, store: Store) -> None:
        """Room again."""
        if self.kind == "tmpfs":
            assert self._filler is not None
            self._filler.unlink()
            return
        self._limit[0] = 0
        store.engine.dispose()


@pytest.fixture(params=["tmpfs", "sqlite_max_page_count"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Disk]:
    """A directory for the database, on a tmpfs or limited by SQLite's page count."""
    directory = tmp_path / "disk"
    if request.param == "tmpfs":
        _mount_tmpfs(directory)
        try:
            yield Disk(directory=directory, kind="tmpfs")
        finally:
            subprocess.run(["umount", "-l", str(directory)], check=False)
    else:
        directory.mkdir()
        yield Disk(directory=directory, kind="sqlite")


def test_full_disk_keeps_results_alerts_directly_and_writes_them_when_space_returns(
    tmp_path: Path, pki: ThrowawayPki, disk: Disk
) -> None:
    """Two cycles on a full disk: kept in memory, one critical alert, all written after."""
    leaf = expiring_leaf(pki, days_left=5)
    with (
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server,
        counting_receiver() as receiver,
    ):
        config = write_config(
            tmp_path,
            root_pem=pki.root.pem,
            endpoints=[("127.0.0.1", server.port, f"e{i}.localhost") for i in range(3)],
            route_url=receiver.url(),
        )
        database = disk.directory / "inventory.db"
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("inventory.db", str(database)), encoding="utf-8")
        loaded = load_config(config)
        seconds = [1000.0]
        store = open_store(loaded.database_url)
        try:
            daemon = Daemon(
                loaded,
                expand_targets(loaded).targets,
                store=store,
                monotonic=lambda: seconds[0],
                scan_options=ScanOptions(retries=0, fetch_missing_issuers=False),
                store_retry_s=(0.05, 0.2),
            )

            async def scenario() -> tuple[list[int], int]:
                kept = []
                first = await daemon.run_cycle()
                assert first.recorded == 3
                await daemon.deliver_pending()
                sent_before = len(receiver.ids)
                disk.fill(store)
                # Cycles on the full disk until a whole cycle's results wait in memory
                # (on the tmpfs the first write fails; under max_page_count a write
                # that fits the pages' spare room may still pass), then one more.
                cycles = 1
                while not kept or kept[-1] < 3 or len(kept) < 2:
                    assert cycles < 8, kept
                    cycles += 1
                    seconds[0] = 1000.0 + 3600 * cycles
                    result = await daemon.run_cycle()
                    assert result.due == 3
                    kept.append(len(daemon.unwritten))
                # The store alert went out directly, once, while the disk was full.
                store_alerts = [b for b in receiver.bodies if b["kind"] == STORE_ALERT_KIND]
                assert [(b["event"], b["severity"]) for b in store_alerts] == [("open", "critical")]
                assert len(receiver.ids) == sent_before + 1
                disk.free(store)
                await asyncio.wait_for(daemon.wait_until_written(), 20)
                kept.append(len(daemon.unwritten))
                return kept, cycles

            kept, cycles = asyncio.run(scenario())
            if disk.kind == "tmpfs":
                assert kept == [3, 6, 0]
            assert kept[-1] == 0 and kept[-2] >= 3
            histories = [len(store.endpoint_history(e.id)) for e in store.list_endpoints()]
            outages = [a for a in store.list_alerts() if a.kind == STORE_ALERT_KIND]
        finally:
            store.close()
    assert histories == [cycles] * 3
    store_events = [b["event"] for b in receiver.bodies if b["kind"] == STORE_ALERT_KIND]
    assert store_events == ["open", "resolve"]
    keys = {b["idempotency_key"] for b in receiver.bodies if b["kind"] == STORE_ALERT_KIND}
    assert len(keys) == 2
    (outage,) = outages
    assert outage.state is AlertState.RESOLVED and f"{kept[-2]} kept results" in str(
        outage.details.get("resolution")
    )


def test_a_reload_during_a_full_disk_carries_the_kept_results_to_the_new_daemon(
    tmp_path: Path, pki: ThrowawayPki, disk: Disk
) -> None:
    """The daemon that replaces another (SIGHUP) writes what the old one kept; none lost."""
    leaf = expiring_leaf(pki, days_left=5)
    with (
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem) as server,
        counting_receiver() as receiver,
    ):
        config = write_config(
            tmp_path,
            root_pem=pki.root.pem,
            endpoints=[("127.0.0.1", server.port, f"e{i}.localhost") for i in range(3)],
            route_url=receiver.url(),
        )
        database = disk.directory / "inventory.db"
        text = config.read_text(encoding="utf-8")
        config.write_text(text.replace("inventory.db", str(database)), encoding="utf-8")
        loaded = load_config(config)
        targets = expand_targets(loaded).targets
        seconds = [1000.0]
        options = ScanOptions(retries=0, fetch_missing_issuers=False)
        store = open_store(loaded.database_url)
        try:
            old = Daemon(
                loaded, targets, store=store, monotonic=lambda: seconds[0], scan_options=options
            )

            async def before_reload() -> int:
                await old.run_cycle()
                disk.fill(store)
                cycles = 1
                while not len(old.unwritten):
                    assert cycles < 8
                    cycles += 1
                    seconds[0] += 3601
                    await old.run_cycle()
                await old._stop_flusher()
                return cycles

            cycles = asyncio.run(before_reload())
            assert len(old.unwritten) > 0
            new = Daemon(
                loaded,
                targets,
                store=store,
                monotonic=lambda: seconds[0],
                scan_options=options,
                previous_schedule=old.schedule,
            )
            new.take_over(old)
            disk.free(store)
            asyncio.run(new.run(once=True))
            histories = [len(store.endpoint_history(e.id)) for e in store.list_endpoints()]
        finally:
            store.close()
    assert histories == [cycles] * 3 and not len(new.unwritten)
    store_events = [b["event"] for b in receiver.bodies if b["kind"] == STORE_ALERT_KIND]
    assert store_events == ["open", "resolve"]


def test_write_buffer_keeps_at_most_its_bound_dropping_the_oldest() -> None:
    """Beyond ``max_reports`` the oldest writes go, counted; the newest stay in order."""
    from datetime import UTC, datetime

    buffer = WriteBuffer(max_reports=5)
    now = datetime(2026, 1, 1, tzinfo=UTC)
    writes = [PendingWrite(reports=[object()] * 2, tags=[(), ()], now=now) for _ in range(4)]  # type: ignore[list-item]
    dropped = [buffer.add(w) for w in writes]
    assert dropped == [0, 0, 2, 2] and len(buffer) == 4 and buffer.dropped == 4
    assert buffer.oldest() is writes[2]
    buffer.written()
    assert buffer.oldest() is writes[3] and len(buffer) == 2

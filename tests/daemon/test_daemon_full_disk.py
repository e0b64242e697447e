"""A full disk under the database: the daemon keeps scanning, keeps results, tells, recovers.

The disk is real: a 6 MiB tmpfs mounted for the test (root only; skipped where mount is
not permitted), filled with a file until the kernel answers ENOSPC, so SQLite meets a
real SQLITE_FULL.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from certvigil.config import load_config
from certvigil.config.expand import expand_targets
from certvigil.daemon.runner import Daemon
from certvigil.daemon.unwritable import STORE_ALERT_KIND, PendingWrite, WriteBuffer
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.scan import ScanOptions
from certvigil.store import AlertState, open_store
from tests.daemon.helpers import counting_receiver, expiring_leaf, write_config


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 6 MiB tmpfs mounted on a temporary directory."""
    mount_point = tmp_path / "disk"
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
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


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


def test_full_disk_keeps_results_alerts_directly_and_writes_them_when_space_returns(
    tmp_path: Path, pki: ThrowawayPki, small_disk: Path
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
        database = small_disk / "inventory.db"
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

            async def scenario() -> list[int]:
                kept = []
                first = await daemon.run_cycle()
                assert first.recorded == 3
                await daemon.deliver_pending()
                sent_before = len(receiver.ids)
                filler = fill(small_disk)
                for hour in (1, 2):
                    seconds[0] = 1000.0 + 3600 * hour + 1
                    result = await daemon.run_cycle()
                    assert result.due == 3 and result.recorded == 0
                    kept.append(len(daemon.unwritten))
                # The store alert went out directly, once, while the disk was full.
                store_alerts = [b for b in receiver.bodies if b["kind"] == STORE_ALERT_KIND]
                assert [(b["event"], b["severity"]) for b in store_alerts] == [("open", "critical")]
                assert len(receiver.ids) == sent_before + 1
                filler.unlink()
                await asyncio.wait_for(daemon.wait_until_written(), 20)
                kept.append(len(daemon.unwritten))
                return kept

            assert asyncio.run(scenario()) == [3, 6, 0]
            histories = [len(store.endpoint_history(e.id)) for e in store.list_endpoints()]
            outages = [a for a in store.list_alerts() if a.kind == STORE_ALERT_KIND]
        finally:
            store.close()
    assert histories == [3, 3, 3]
    store_events = [b["event"] for b in receiver.bodies if b["kind"] == STORE_ALERT_KIND]
    assert store_events == ["open", "resolve"]
    keys = {b["idempotency_key"] for b in receiver.bodies if b["kind"] == STORE_ALERT_KIND}
    assert len(keys) == 2
    (outage,) = outages
    assert outage.state is AlertState.RESOLVED and "6 kept results" in str(
        outage.details.get("resolution")
    )


def test_a_reload_during_a_full_disk_carries_the_kept_results_to_the_new_daemon(
    tmp_path: Path, pki: ThrowawayPki, small_disk: Path
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
            endpoints=[("127.0.0.1", server.port, f"e{i}.localhost") for i in range(2)],
            route_url=receiver.url(),
        )
        database = small_disk / "inventory.db"
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

            async def before_reload() -> Path:
                await old.run_cycle()
                filler = fill(small_disk)
                seconds[0] += 3601
                await old.run_cycle()
                await old._stop_flusher()
                return filler

            filler = asyncio.run(before_reload())
            assert len(old.unwritten) == 2
            new = Daemon(
                loaded,
                targets,
                store=store,
                monotonic=lambda: seconds[0],
                scan_options=options,
                previous_schedule=old.schedule,
            )
            new.take_over(old)
            filler.unlink()
            asyncio.run(new.run(once=True))
            histories = [len(store.endpoint_history(e.id)) for e in store.list_endpoints()]
        finally:
            store.close()
    assert histories == [2, 2] and not len(new.unwritten)
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

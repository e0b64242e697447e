"""Two writers at once: SQLite in WAL mode queues them instead of failing."""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from certvigil.errors import StoreError
from certvigil.store import api as store_api
from certvigil.store import engine as store_engine
from certvigil.store import open_store
from certvigil.store.ingest import record_report
from certvigil.targets.target import Target
from tests.store.factories import NOW, facts, ok_report

REPORTS_PER_WRITER = 60


def _writer(url: str, name: str) -> None:
    store = open_store(url)
    try:
        shared = facts("shared", not_after_utc=NOW + timedelta(days=60))
        for i in range(REPORTS_PER_WRITER):
            target = Target(host=f"{name}-{i % 5}.example.test", port=443)
            store.record_report(
                ok_report(target, (shared,), at=NOW + timedelta(seconds=i)), tags=[name]
            )
    finally:
        store.close()


def test_two_processes_write_one_sqlite_file(tmp_path: Path) -> None:
    """Two processes recording reports into one SQLite file both succeed, nothing lost."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    open_store(url).close()
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_writer, args=(url, name)) for name in ("a", "b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=90)
    assert [w.exitcode for w in writers] == [0, 0]
    store = open_store(url)
    try:
        with store.read() as connection:
            observations = connection.exec_driver_sql("SELECT count(*) FROM observations").scalar()
            certificates = connection.exec_driver_sql("SELECT count(*) FROM certificates").scalar()
        assert observations == 2 * REPORTS_PER_WRITER
        assert certificates == 1
        assert len(store.list_endpoints(tag="a")) == 5
        assert len(store.list_endpoints(tag="b")) == 5
    finally:
        store.close()


def _open_and_close(url: str) -> None:
    open_store(url).close()


def test_processes_opening_a_new_database_at_once(tmp_path: Path) -> None:
    """Several processes opening the same new SQLite file all migrate it without error."""
    url = f"sqlite:///{tmp_path / 'new.db'}"
    context = multiprocessing.get_context("spawn")
    openers = [context.Process(target=_open_and_close, args=(url,)) for _ in range(3)]
    for opener in openers:
        opener.start()
    for opener in openers:
        opener.join(timeout=90)
    assert [o.exitcode for o in openers] == [0, 0, 0]


def test_threads_opening_new_sqlite_files_together_all_succeed(tmp_path: Path) -> None:
    """Several threads opening one new SQLite file at once all get the store: the switch
    to WAL mode, which SQLite refuses at once while another connection holds the file,
    waits its turn instead of failing."""
    import threading

    failures: list[BaseException] = []
    for round_number in range(8):
        path = str(tmp_path / f"new-{round_number}.db")
        barrier = threading.Barrier(4)

        def open_together(url: str = path, gate: threading.Barrier = barrier) -> None:
            gate.wait()
            try:
                open_store(url).close()
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                failures.append(exc)

        threads = [threading.Thread(target=open_together) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert failures == []


def test_threads_of_one_process_queue_for_the_write_lock_not_in_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second thread's write waits for the first to commit without touching SQLite:
    with no busy time-out at all, it still succeeds (SQLite would answer "database is
    locked" at once), and it starts only after the first has committed."""
    url = f"sqlite:///{tmp_path / 'threads.db'}"
    open_store(url).close()
    monkeypatch.setattr(store_engine, "SQLITE_BUSY_TIMEOUT_MS", 0)
    store = open_store(url)
    holding = threading.Event()
    order: list[str] = []
    errors: list[BaseException] = []
    leaf = facts("shared", not_after_utc=NOW + timedelta(days=60))

    def first() -> None:
        with store.write() as connection:
            record_report(connection, ok_report(Target(host="a.example.test", port=443), (leaf,)))
            holding.set()
            time.sleep(0.3)
            order.append("first committed")

    def second() -> None:
        holding.wait(10)
        try:
            store.record_report(ok_report(Target(host="b.example.test", port=443), (leaf,)))
            order.append("second written")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    try:
        assert errors == []
        assert order == ["first committed", "second written"]
        assert len(store.list_endpoints()) == 2
    finally:
        store.close()


def test_a_writer_held_up_past_the_busy_time_out_is_told_the_database_is_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiting for this process's write turn is bounded like SQLite's own wait: past the
    busy time-out the second writer gets "database is locked", not an endless wait."""
    url = f"sqlite:///{tmp_path / 'held.db'}"
    store = open_store(url)
    monkeypatch.setattr(store_api, "SQLITE_BUSY_TIMEOUT_MS", 200)
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.write():
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(10)
        started = time.monotonic()
        with pytest.raises(StoreError, match="database is locked"):
            store.record_report(
                ok_report(
                    Target(host="b.example.test", port=443),
                    (facts("b", not_after_utc=NOW + timedelta(days=9)),),
                )
            )
        assert 0.15 < time.monotonic() - started < 5
    finally:
        release.set()
        holder.join(10)
        store.close()

"""The process that judges and stores agents' report batches for a server process.

Judging and storing a batch is Python from end to end and holds the interpreter lock
for most of its 15-20 ms. Done on a thread of the server's own process, it took turns
on that lock with the event loop, which meanwhile receives the next bodies and answers
readers: both ran slower for it. In a process of its own it has a processor to itself
and the loop keeps the other. Measured with ``bench/server_api.py`` at 1,000,000
observations, 4 clients, alternating with the thread, eight pairs: a next cycle 5,167-
5,849 observations/s against 3,464-5,390, and a reader's ``GET`` during the ingest p99
7-14 ms against 11-25.

The server process still has one ingest thread (:class:`~certvigil.server.ingest.IngestThread`),
which now hands each batch to this process and waits for the answer: batches are still
stored one at a time, in arrival order. The process opens its own connection to the
inventory; the server keeps the alert stream, and wakes it when a batch made events.

Failure: a batch whose process dies (killed, out of memory) is answered 503 and the next
batch starts a new process; the batch's transaction was either committed, and a retry is
recognised by its report id, or never was. The process ignores ``SIGINT`` and ``SIGTERM``
(a Ctrl-C or a service stop reaches every process of the group) and leaves when the
server closes the pipe or exits: a batch being stored is finished first.
"""

from __future__ import annotations

import atexit
import gc
import logging
import multiprocessing
import signal
import sys
import threading
import traceback
from dataclasses import dataclass, replace
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from certvigil.alerts.engine import AlertEngine
from certvigil.alerts.routing import AlertRoute
from certvigil.alerts.rules import AlertPolicy
from certvigil.analysis.certificate import keep_certificates
from certvigil.analysis.thresholds import parse_threshold
from certvigil.cli import GC_THRESHOLDS
from certvigil.errors import StoreError
from certvigil.server.errors import ApiError
from certvigil.server.ingest import AgentInfo, BatchOutcome, judge_items, store_batch
from certvigil.server.trust import TrustDocument, trust_store_for
from certvigil.store import Store, open_store

log = logging.getLogger(__name__)

START_DEADLINE_S = 120.0
"""How long the process may take to start and open the inventory."""

BATCH_DEADLINE_S = 300.0
"""How long one batch may take before its process is stopped and the batch refused (a
batch takes milliseconds; a database lock held longer than this is a fault)."""

STOP_DEADLINE_S = 30.0
"""How long a closing server waits for the process to leave before killing it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterSetup:
    """What the process needs to open: the inventory and the alert settings.

    Attributes:
        database_url: The inventory's URL, password included.
        routes: The alert routes.
        policy: The server's alert policy (an agent's thresholds are applied per batch).
        kept_certificates: How many parsed certificates the process keeps.
    """

    database_url: str
    routes: tuple[AlertRoute, ...]
    policy: AlertPolicy
    kept_certificates: int


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRequest:
    """One batch as the server received it.

    Attributes:
        report_id: The batch's id, qualified by the agent's name.
        agent: What the agent says about itself.
        api_key_id: The key that sent it.
        trust: The agent's trust settings.
        thresholds: The agent's alert thresholds (``30d``...).
        items: The observations, as sent.
        now: The server's time of receipt.
    """

    report_id: str
    agent: AgentInfo
    api_key_id: int | None
    trust: TrustDocument
    thresholds: tuple[str, ...] | None
    items: list[Any]
    now: datetime


class IngestUnavailable(ApiError):
    """The ingest process stopped or failed to start: the batch was not answered."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "unavailable", message)


class IngestProcess:
    """The server's side of the ingest process: started on first use, one batch at a
    time (the caller is the server's one ingest thread)."""

    def __init__(self, setup: WriterSetup) -> None:
        self._setup = setup
        self._lock = threading.Lock()
        self._process: Any = None
        self._conn: Connection | None = None

    @property
    def pid(self) -> int | None:
        """The running process's id, ``None`` before it starts."""
        return None if self._process is None else int(self._process.pid)

    def start(self) -> None:
        """Starts the process unless it runs; waits until it has opened the inventory.

        Raises:
            IngestUnavailable: It could not start or open the inventory.
        """
        with self._lock:
            if self._conn is not None and self._process.is_alive():
                return
            # One that died between batches is replaced before a batch is lost to it.
            self._discard_locked()
            # Forked from a clean process that has imported the ingest code once (not
            # from the server itself, whose threads may hold locks at the fork).
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve, args=(theirs, self._setup), name="certvigil-ingest", daemon=True
            )
            process.start()
            theirs.close()
            self._process, self._conn = process, ours
            atexit.register(self.close)
            try:
                if not ours.poll(START_DEADLINE_S):
                    raise EOFError
                reply = ours.recv()
            except (EOFError, OSError):
                self._discard_locked()
                raise IngestUnavailable("the ingest process did not start") from None
            if reply[0] != "ready":
                self._discard_locked()
                raise IngestUnavailable(f"the ingest process could not start: {reply[1]}")

    def store(self, request: BatchRequest) -> BatchOutcome:
        """Judges and stores a batch in the process.

        Raises:
            ApiError: The batch's trust settings or thresholds are invalid (422), or the
                process stopped while storing it (503: send it again).
            StoreError: The inventory could not be written.
        """
        self.start()
        with self._lock:
            conn = self._conn
            if conn is None:
                raise IngestUnavailable("the ingest process stopped")
            try:
                conn.send(request)
                if not conn.poll(BATCH_DEADLINE_S):
                    self._discard_locked()
                    raise IngestUnavailable(
                        f"storing the batch took more than {BATCH_DEADLINE_S:.0f} s; send it "
                        "again (a batch already stored is recognised by its report id)"
                    )
                reply = conn.recv()
            except (EOFError, OSError):
                self._discard_locked()
                raise IngestUnavailable(
                    "the ingest process stopped while storing the batch; send it again "
                    "(a batch already stored is recognised by its report id)"
                ) from None
        kind = reply[0]
        if kind == "ok":
            outcome: BatchOutcome = reply[1]
            return outcome
        if kind == "api_error":
            raise ApiError(*reply[1:])
        if kind == "store_error":
            raise StoreError(reply[1])
        raise RuntimeError(f"the ingest process failed on a batch: {reply[1]}")

    def close(self) -> None:
        """Lets the process finish its batch and leave; kills it after
        ``STOP_DEADLINE_S``. A later batch starts a new one."""
        with self._lock:
            conn, process = self._conn, self._process
            self._conn = self._process = None
        atexit.unregister(self.close)
        if conn is None:
            return
        conn.close()
        process.join(STOP_DEADLINE_S)
        if process.is_alive():
            process.kill()
            process.join()

    def _discard_locked(self) -> None:
        """Forgets a process that failed, killing it if it still runs."""
        conn, process = self._conn, self._process
        self._conn = self._process = None
        if conn is not None:
            conn.close()
        if process is not None:
            if process.is_alive():
                process.kill()
            process.join()


def setup_for(
    store: Store, routes: tuple[AlertRoute, ...], policy: AlertPolicy, kept: int
) -> WriterSetup:
    """The setup of a server's ingest process."""
    url = store.engine.url.render_as_string(hide_password=False)
    return WriterSetup(database_url=url, routes=routes, policy=policy, kept_certificates=kept)


@dataclass(slots=True)
class _Writer:
    """What the process holds: the inventory and the alert settings."""

    store: Store
    routes: tuple[AlertRoute, ...]
    policy: AlertPolicy

    def ingest(self, request: BatchRequest) -> BatchOutcome:
        """Judges a batch with the agent's trust settings and stores it with its alerts."""
        trust = trust_store_for(request.trust)
        judged, rejected = judge_items(request.items, now=request.now, trust=trust)
        policy = self.policy
        if request.thresholds:
            policy = _with_thresholds(policy, request.thresholds, [r.target for r, _ in judged])
        return store_batch(
            self.store,
            AlertEngine(self.store, self.routes, policy),
            report_id=request.report_id,
            agent=request.agent,
            api_key_id=request.api_key_id,
            judged=judged,
            rejected=rejected,
            now=request.now,
        )


def _with_thresholds(
    policy: AlertPolicy, labels: tuple[str, ...], targets: list[Any]
) -> AlertPolicy:
    """The server's policy with the agent's thresholds for its targets."""
    try:
        thresholds = tuple(parse_threshold(label) for label in labels)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"thresholds: {exc}") from None
    return replace(
        policy,
        target_thresholds={**policy.target_thresholds, **dict.fromkeys(targets, thresholds)},
    )


def _serve(conn: Connection, setup: WriterSetup) -> None:
    """The process: opens the inventory, then stores each batch it is sent until the
    server closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        keep_certificates(setup.kept_certificates)
        store = open_store(setup.database_url, migrate=False)
    except Exception as exc:  # noqa: BLE001 - told to the server, which refuses the batch
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    writer = _Writer(store=store, routes=setup.routes, policy=setup.policy)
    # As the server itself (certvigil.cli.main): what start-up built is frozen out of
    # collections, and the young generation is collected every 10,000 allocations; the
    # collector otherwise took about 8 % of this process's CPU.
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    conn.send(("ready", None))
    try:
        while True:
            try:
                request = conn.recv()
            except (EOFError, OSError):
                return
            conn.send(_answer(writer, request))
    except (EOFError, OSError):
        return
    finally:
        store.close()


def _answer(writer: _Writer, request: BatchRequest) -> tuple[Any, ...]:
    """The reply to one batch: its outcome or what went wrong, in picklable form."""
    try:
        return ("ok", writer.ingest(request))
    except ApiError as exc:
        return ("api_error", exc.status, exc.code, exc.message, exc.details)
    except StoreError as exc:
        return ("store_error", str(exc))
    except Exception as exc:  # noqa: BLE001 - a fault: logged here, a 500 there
        traceback.print_exc(file=sys.stderr)
        return ("error", f"{type(exc).__name__}: {exc}")

"""The process that judges and stores agents' report batches for a server process.

Judging and storing a batch is Python from end to end and holds the interpreter lock
for most of its 15-20 ms. Done on a thread of the server's own process, it took turns
on that lock with the event loop, which meanwhile receives the next bodies and answers
readers: both ran slower for it. In a process of its own it has a processor to itself
and the loop keeps the other. Measured with ``bench/server_api.py`` at 1,000,000
observations, 4 clients, alternating with the ingest thread doing the work, six pairs:
a next cycle 5,830-7,178 observations/s against 4,461-5,295, and a reader's ``GET``
during the ingest p99 4-15 ms against 10-22.

The server process still has one ingest thread (:class:`~certvigil.server.ingest.IngestThread`),
which sends each batch to this process in arrival order without waiting for the answer
to the one before (the process stores them one at a time, in that order, and finds the
next waiting in its pipe: sent one at a time, it idled about a tenth of the time); a
thread of the server matches the answers to the batches. The process opens its own
connection to the inventory; the server keeps the alert stream, and wakes it when a
batch made events.

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
import pickle
import signal
import sys
import threading
import time
import traceback
from collections import deque
from concurrent.futures import Future
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


_RESEND = "send it again (a batch already stored is recognised by its report id)"


class IngestProcess:
    """The server's side of the ingest process, started on first use.

    Batches are sent as they come (by the server's one ingest thread, so in arrival
    order) without waiting for the answer to the one before: the process takes the next
    from its pipe as soon as it has stored one, and a thread of the server reads the
    answers, which come in the same order.
    """

    def __init__(self, setup: WriterSetup) -> None:
        self._setup = setup
        self._lock = threading.Lock()
        self._running: _Running | None = None

    @property
    def pid(self) -> int | None:
        """The running process's id, ``None`` while none runs."""
        running = self._running
        return None if running is None else running.pid

    def start(self) -> None:
        """Starts the process unless it runs; waits until it has opened the inventory.

        Raises:
            IngestUnavailable: It could not start or open the inventory.
        """
        self._started()

    def submit(self, request: BatchRequest) -> Future[BatchOutcome]:
        """Sends a batch to the process; the future has its outcome.

        The future's exception is an :class:`~certvigil.server.errors.ApiError` for
        invalid trust settings or thresholds (422) or a process that stopped before
        answering (503: send it again), a ``StoreError`` when the inventory could not be
        written.
        """
        return self._started().send(request)

    def close(self) -> None:
        """Waits for the answers of the batches sent, then lets the process leave
        (killed after ``STOP_DEADLINE_S``). A later batch starts a new one."""
        with self._lock:
            running, self._running = self._running, None
        atexit.unregister(self.close)
        if running is not None:
            running.stop()

    def _started(self) -> _Running:
        with self._lock:
            running = self._running
            if running is not None and running.alive():
                return running
            # One that died between batches is replaced before a batch is lost to it.
            self._running = None
            if running is not None:
                running.fail("the ingest process stopped")
                running.stop()
            running = _Running.start(self._setup)
            self._running = running
            atexit.register(self.close)
            return running


class _Running:
    """One started ingest process: its pipe, the batches sent and not yet answered
    (oldest first, with the time each was sent), and the thread reading the answers."""

    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.pid = int(process.pid)
        self._conn = conn
        self._send_lock = threading.Lock()
        self._pending_lock = threading.Lock()
        self._pending: deque[tuple[Future[BatchOutcome], float]] = deque()
        self._failed: str | None = None
        self._stopping = False
        self._reader = threading.Thread(
            target=self._read, name="certvigil-ingest-answers", daemon=True
        )

    @classmethod
    def start(cls, setup: WriterSetup) -> _Running:
        # Forked from a clean process that has imported the ingest code once (not from
        # the server itself, whose threads may hold locks at the fork).
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        ours, theirs = context.Pipe()
        process = context.Process(
            target=_serve, args=(theirs, setup), name="certvigil-ingest", daemon=True
        )
        process.start()
        theirs.close()
        running = cls(process, ours)
        try:
            if not ours.poll(START_DEADLINE_S):
                raise EOFError
            reply = ours.recv()
        except (EOFError, OSError):
            running.stop()
            raise IngestUnavailable("the ingest process did not start") from None
        if reply[0] != "ready":
            running.stop()
            raise IngestUnavailable(f"the ingest process could not start: {reply[1]}")
        running._reader.start()
        return running

    def alive(self) -> bool:
        return self._failed is None and bool(self.process.is_alive())

    def send(self, request: BatchRequest) -> Future[BatchOutcome]:
        # Encoded first: a batch that could not be would otherwise leave an answer
        # expected that never comes, and the next batch's answer would be taken for it.
        payload = pickle.dumps(request, protocol=pickle.HIGHEST_PROTOCOL)
        future: Future[BatchOutcome] = Future()
        # Running from now on: a request given up by its client cannot cancel it, and
        # the batch is stored and answered all the same.
        future.set_running_or_notify_cancel()
        with self._send_lock:
            with self._pending_lock:
                if self._failed is not None:
                    raise IngestUnavailable(self._failed)
                self._pending.append((future, time.monotonic()))
            try:
                self._conn.send_bytes(payload)
            except (OSError, ValueError):
                self.fail(f"the ingest process stopped while storing the batch; {_RESEND}")
        return future

    def fail(self, message: str) -> None:
        """Every batch not yet answered fails with ``message`` (503), and so will later
        ones sent to this process."""
        with self._pending_lock:
            if self._failed is None:
                self._failed = message
            pending = list(self._pending)
            self._pending.clear()
        for future, _ in pending:
            future.set_exception(IngestUnavailable(message))

    def stop(self) -> None:
        """Waits for the answers still due, closes the pipe and lets the process leave."""
        self._stopping = True
        if self._reader.is_alive():
            self._reader.join(BATCH_DEADLINE_S + STOP_DEADLINE_S)
        self.fail("the ingest process stopped")
        self._conn.close()
        self.process.join(STOP_DEADLINE_S)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def _read(self) -> None:
        """Matches each answer to the oldest batch sent; fails them all when the process
        stops or a batch overruns ``BATCH_DEADLINE_S``."""
        while True:
            with self._pending_lock:
                sent_at = self._pending[0][1] if self._pending else None
            if sent_at is None and (self._stopping or self._failed is not None):
                return
            try:
                ready = self._conn.poll(0.5)
            except (EOFError, OSError):
                ready = True
            if not ready:
                if sent_at is not None and time.monotonic() - sent_at > BATCH_DEADLINE_S:
                    self.process.kill()
                    self.fail(f"storing a batch took more than {BATCH_DEADLINE_S:.0f} s; {_RESEND}")
                    return
                continue
            try:
                reply = self._conn.recv()
            except (EOFError, OSError):
                self.fail(f"the ingest process stopped while storing the batch; {_RESEND}")
                return
            with self._pending_lock:
                if not self._pending:  # failed meanwhile: already answered 503
                    continue
                future, _ = self._pending.popleft()
            _resolve(future, reply)


def _resolve(future: Future[BatchOutcome], reply: tuple[Any, ...]) -> None:
    """Sets a batch's outcome, or the error the process answered."""
    kind = reply[0]
    if kind == "ok":
        future.set_result(reply[1])
    elif kind == "api_error":
        future.set_exception(ApiError(*reply[1:]))
    elif kind == "store_error":
        future.set_exception(StoreError(reply[1]))
    else:
        future.set_exception(RuntimeError(f"the ingest process failed on a batch: {reply[1]}"))


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

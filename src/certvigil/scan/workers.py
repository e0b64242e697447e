"""Scanning in several processes: each worker probes and judges its share of the targets.

One Python process spends about 1.5 ms of CPU per endpoint (handshake, analysis, event
loop), so it cannot use a second core. ``scan_stream_workers`` forks ``workers``
processes, each running its own event loop and its own ``EndpointScanner`` over the
targets the parent hands it, and streams their reports back to the parent, which yields
them in completion order, exactly as ``certvigil.scan.scanner.scan_stream`` does.

Partitioning: a target goes to the worker chosen by its destination address (its /24
or /64 when ``per_subnet_concurrency`` is set), so every connection to one address, or
one network, is made by one worker and the per-address and per-subnet limits hold over
the whole scan. Host names are resolved in the parent (concurrently, cached for the
scan) and handed out with their addresses, which the worker then uses without asking
again; a name that does not resolve goes to the worker chosen by its name, which looks
it up once more and reports the failure (with the retry a transient one gets).
``concurrency`` is divided between the workers (rounded up).

Memory stays flat: the parent pulls targets lazily and hands each worker at most twice
its share of ``concurrency``, plus as many as the worker has set aside behind a silent
address (at most that many again; each worker tells the parent its count); reports
cross a socket pair as pickles, one batch per event-loop turn, and are not kept.
Workers are forked (Linux), so the trust store and the imported modules are shared
copy-on-write and nothing is imported again. If a worker dies, each of its unfinished
targets is reported as an ``internal_error`` failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import itertools
import math
import os
import pickle
import signal
import socket
import struct
import time
import warnings
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sized
from datetime import datetime
from typing import Any

from certvigil.analysis.judge import judge
from certvigil.analysis.model import EndpointReport
from certvigil.analysis.trust import TrustStore
from certvigil.observed.endpoint import EndpointObservation
from certvigil.observed.handshake import FailureKind, ProbeFailure
from certvigil.probe.resolve import resolve_addresses
from certvigil.scan.options import ScanOptions, utc_now
from certvigil.scan.scanner import EndpointScanner, ScanProgress, scan_stream
from certvigil.targets.ipaddr import parse_ip
from certvigil.targets.target import Target

__all__ = [
    "AUTO_WORKERS_MIN_TARGETS",
    "choose_workers",
    "default_workers",
    "scan_stream_workers",
    "worker_of",
]

_LENGTH = struct.Struct("!I")
_ANSWERS = -1  # an arrival that says host-name lookups finished, not a worker's reports
_PARKED = "parked"  # a worker's message: ("parked", endpoints it set aside)
_DNS_CACHE_ENTRIES = 4096
_Routed = tuple[Target, tuple[str, ...] | None]  # a target and its host's addresses
_RECV_BYTES = 1 << 20
_STOP_WAIT_S = 2.0


def default_workers() -> int:
    """One worker per CPU this process may run on."""
    return max(1, len(os.sched_getaffinity(0)))


# Below this many targets a second process costs more (fork, partitioning, pickling)
# than it saves: bench/scan_throughput.py measured 1 and 2 workers alike at 2,000
# loopback endpoints and 2 workers 1.5x faster at 10,000 on a 2-core machine.
AUTO_WORKERS_MIN_TARGETS = 2000


def choose_workers(
    targets: Iterable[Target], *, cpus: int | None = None
) -> tuple[int, Iterator[Target]]:
    """Pick the number of scanner processes for a scan whose size is not known upfront.

    Reads up to ``AUTO_WORKERS_MIN_TARGETS`` targets ahead: a smaller scan runs in this
    process, a larger one gets one worker per CPU.

    Args:
        targets: The endpoints, consumed lazily.
        cpus: CPUs to use for a large scan; ``default_workers()`` when ``None``.

    Returns:
        The worker count and an iterator over every target, the peeked ones first.
    """
    iterator = iter(targets)
    head: list[Target] = []
    for target in iterator:
        head.append(target)
        if len(head) >= AUTO_WORKERS_MIN_TARGETS:
            workers = cpus if cpus is not None else default_workers()
            return max(1, workers), itertools.chain(head, iterator)
    return 1, iter(head)


def worker_of(
    target: Target, workers: int, *, by_subnet: bool = False, address: str | None = None
) -> int:
    """The worker (0-based) that scans ``target``: chosen by its address or host name.

    Args:
        target: The endpoint.
        workers: Number of workers.
        by_subnet: Choose by the address's /24 (IPv4) or /64 (IPv6), so that every
            address of one network goes to the same worker.
        address: The address a host name resolved to (IP literals are their own).

    Returns:
        A stable index in ``range(workers)``.
    """
    if address is None and target.is_ip:
        address = target.host
    if address is not None:
        ip = parse_ip(address)
        key = int(ip)
        if by_subnet:
            key >>= ip.max_prefixlen - (24 if ip.version == 4 else 64)
        return key % workers
    return zlib.crc32(target.host.encode("utf-8", "surrogatepass")) % workers


async def scan_stream_workers(
    targets: Iterable[Target],
    *,
    options: ScanOptions,
    trust: TrustStore,
    workers: int,
    clock: Callable[[], datetime] = utc_now,
    on_progress: Callable[[ScanProgress], None] | None = None,
    stop: asyncio.Event | None = None,
) -> AsyncIterator[EndpointReport]:
    """Like ``scan_stream``, with the probing and analysis done in ``workers`` processes.

    With ``workers`` of 1 this is ``scan_stream`` itself (no process is started).
    Closing the iterator early stops the workers. Workers ignore SIGINT and SIGTERM
    (Ctrl-C reaches the whole process group): the parent decides. Once ``stop`` is set,
    no more targets are handed to the workers (those read and not handed out are
    dropped without a report), and the iterator ends when the workers have sent the
    reports of the endpoints they had started.

    Args:
        targets: The endpoints; consumed lazily, in the parent.
        options: Scan options; ``concurrency`` is shared out between the workers.
        trust: The anchors (inherited by the forked workers).
        workers: Number of worker processes (at least 1).
        clock: Source of ``now`` (called in the workers).
        on_progress: Called in the parent after each endpoint.
        stop: Set to stop handing out targets (on SIGINT or SIGTERM).

    Yields:
        One ``EndpointReport`` per target, in completion order.

    Raises:
        ValueError: ``workers`` is less than 1.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers == 1:
        async for report in scan_stream(
            targets, options=options, trust=trust, clock=clock, on_progress=on_progress, stop=stop
        ):
            yield report
        return
    share = dataclasses.replace(options, concurrency=math.ceil(options.concurrency / workers))
    pool = _Pool.start(workers, options=share, trust=trust, clock=clock)
    try:
        async for report in pool.run(targets, on_progress=on_progress, stop=stop):
            yield report
    finally:
        await pool.stop()


class _Pool:
    """The parent's side: one socket and one set of unfinished targets per worker."""

    def __init__(
        self,
        pids: list[int],
        sockets: list[socket.socket],
        *,
        options: ScanOptions,
        trust: TrustStore,
    ) -> None:
        self._pids = pids
        self._sockets = sockets
        self._options = options
        self._trust = trust
        self._cap = 2 * options.concurrency  # targets handed to one worker at once
        self._unfinished: list[dict[int, Target]] = [{} for _ in pids]
        self._parked = [0 for _ in pids]  # endpoints each worker set aside, as it last said
        self._waiting: list[deque[_Routed]] = [deque() for _ in pids]
        self._arrivals: asyncio.Queue[tuple[int, list[tuple[int, EndpointReport]] | None]]
        self._arrivals = asyncio.Queue()
        self._readers: list[asyncio.Task[None]] = []
        # Host names being resolved, with the targets waiting for the answer; answers
        # for the scan (failures are not kept: the worker asks again).
        # Keyed by host name alone: the addresses do not depend on the port.
        self._resolving: dict[str, list[Target]] = {}
        self._resolving_targets = 0  # the targets in ``_resolving``, kept as a count
        self._resolved: dict[str, tuple[str, ...]] = {}
        self._answers: list[tuple[str, tuple[str, ...] | None]] = []
        self._lookups: set[asyncio.Task[None]] = set()

    @classmethod
    def start(
        cls,
        workers: int,
        *,
        options: ScanOptions,
        trust: TrustStore,
        clock: Callable[[], datetime],
    ) -> _Pool:
        pids: list[int] = []
        parent_ends: list[socket.socket] = []
        # Objects that exist now are left out of garbage collection until ``stop``: a
        # collection in a worker would otherwise write to every page holding them and
        # copy the parent's whole heap into each worker over a long scan.
        gc.freeze()
        # SIGINT and SIGTERM are held back around each fork, so that a worker never
        # meets one before it has set itself to ignore them.
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            for _ in range(workers):
                parent_end, child_end = socket.socketpair()
                with warnings.catch_warnings():
                    # Python 3.12 warns about forking a process that has threads (a
                    # progress bar's, a test server's): the worker touches none of their
                    # state and takes no lock before its own event loop runs.
                    warnings.simplefilter("ignore", DeprecationWarning)
                    pid = os.fork()
                if pid == 0:  # the worker: never returns
                    signal.signal(signal.SIGINT, signal.SIG_IGN)
                    signal.signal(signal.SIGTERM, signal.SIG_IGN)
                    signal.pthread_sigmask(signal.SIG_SETMASK, held)
                    for inherited in parent_ends:
                        inherited.close()
                    parent_end.close()
                    _worker_main(child_end, options=options, trust=trust, clock=clock)
                child_end.close()
                parent_end.setblocking(False)
                pids.append(pid)
                parent_ends.append(parent_end)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
        return cls(pids, parent_ends, options=options, trust=trust)

    async def run(
        self,
        targets: Iterable[Target],
        *,
        on_progress: Callable[[ScanProgress], None] | None,
        stop: asyncio.Event | None = None,
    ) -> AsyncIterator[EndpointReport]:
        loop = asyncio.get_running_loop()
        self._readers = [
            asyncio.create_task(self._read(index)) for index in range(len(self._sockets))
        ]
        total = len(targets) if isinstance(targets, Sized) else None
        iterator: Iterator[Target] = iter(targets)
        workers = len(self._sockets)
        started = time.perf_counter()
        sequence = completed = failed = 0
        exhausted = False
        dead: set[int] = set()
        by_subnet = self._options.per_subnet_concurrency is not None
        while True:
            # Read ahead while some worker has room, so that one busy worker does not
            # hold back the others; at most ``cap`` targets wait per worker.
            while not exhausted and self._held() < self._cap * workers:
                target = next(iterator, None)
                if target is None:
                    exhausted = True
                    break
                self._route(target, by_subnet=by_subnet)
            self._route_answers(by_subnet=by_subnet)
            if stop is not None and stop.is_set():
                # Stopping: what was read and not handed out is not scanned.
                exhausted = True
                for waiting in self._waiting:
                    waiting.clear()
                self._resolving.clear()
                self._resolving_targets = 0
            arrivals: list[tuple[int, list[tuple[int, EndpointReport]]]] = []
            for index in range(workers):
                if index in dead:
                    if self._waiting[index]:
                        arrivals.append((index, self._lost(index)))
                    continue
                batch: list[tuple[int, Target, tuple[str, ...] | None]] = []
                unfinished, waiting = self._unfinished[index], self._waiting[index]
                room = self._cap + min(self._parked[index], self._cap)
                while waiting and len(unfinished) < room:
                    sequence += 1
                    target, addresses = waiting.popleft()
                    unfinished[sequence] = target
                    batch.append((sequence, target, addresses))
                if batch:
                    with contextlib.suppress(OSError):  # its reader tells the loss
                        await _send(loop, self._sockets[index], batch)
            if not arrivals:
                if (
                    exhausted
                    and not self._resolving
                    and not any(self._waiting)
                    and not any(self._unfinished)
                ):
                    for index in range(workers):
                        if index not in dead:
                            with contextlib.suppress(OSError):
                                await _send(loop, self._sockets[index], None)
                    return
                index, arrived = await self._arrivals.get()
                if index == _ANSWERS:
                    continue  # host names resolved: route them on the next pass
                if arrived is None:  # the worker is gone: its unfinished targets fail
                    dead.add(index)
                    arrived = self._lost(index)
                arrivals.append((index, arrived))
            for index, arrived in arrivals:
                for number, report in arrived:
                    self._unfinished[index].pop(number, None)
                    completed += 1
                    failed += report.is_failed
                    if on_progress is not None:
                        on_progress(
                            ScanProgress(
                                completed=completed,
                                failed=failed,
                                in_flight=sum(map(len, self._unfinished)),
                                total=total,
                                elapsed_s=time.perf_counter() - started,
                                last_report=report,
                            )
                        )
                    yield report

    def _held(self) -> int:
        """Targets read but not yet handed to a worker."""
        return sum(map(len, self._waiting)) + self._resolving_targets

    def _route(self, target: Target, *, by_subnet: bool) -> None:
        """Queue ``target`` for its worker, or for its host name's lookup first."""
        workers = len(self._sockets)
        if target.is_ip:
            self._waiting[worker_of(target, workers, by_subnet=by_subnet)].append((target, None))
            return
        key = target.host
        addresses = self._resolved.get(key)
        if addresses is not None:
            index = worker_of(target, workers, by_subnet=by_subnet, address=addresses[0])
            self._waiting[index].append((target, addresses))
            return
        waiting = self._resolving.get(key)
        self._resolving_targets += 1
        if waiting is None:
            self._resolving[key] = [target]
            lookup = asyncio.create_task(self._look_up(key, target.port))
            self._lookups.add(lookup)
            lookup.add_done_callback(self._lookups.discard)
        else:
            waiting.append(target)

    async def _look_up(self, host: str, port: int) -> None:
        addresses: tuple[str, ...] | None
        try:
            addresses = await resolve_addresses(host, port, timeout_s=self._options.dns_timeout_s)
        except Exception:  # noqa: BLE001 - the worker asks again and reports what it gets
            addresses = None
        self._answers.append((host, addresses))
        self._arrivals.put_nowait((_ANSWERS, []))

    def _route_answers(self, *, by_subnet: bool) -> None:
        """Hand the targets whose host names were resolved to the workers of their addresses."""
        workers = len(self._sockets)
        answers, self._answers = self._answers, []
        for key, addresses in answers:
            if addresses is not None:
                if len(self._resolved) >= _DNS_CACHE_ENTRIES:
                    self._resolved.clear()
                self._resolved[key] = addresses
            resolved_targets = self._resolving.pop(key, [])
            self._resolving_targets -= len(resolved_targets)
            for target in resolved_targets:
                address = addresses[0] if addresses else None
                index = worker_of(target, workers, by_subnet=by_subnet, address=address)
                self._waiting[index].append((target, addresses))

    async def _read(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        sock = self._sockets[index]
        try:
            async for batch in _frames(loop, sock):
                if isinstance(batch, tuple) and batch[0] == _PARKED:
                    self._parked[index] = batch[1]
                    self._arrivals.put_nowait((index, []))  # room for more, maybe
                    continue
                self._arrivals.put_nowait((index, batch))
        except (OSError, pickle.UnpicklingError, EOFError):
            pass
        self._arrivals.put_nowait((index, None))

    def _lost(self, index: int) -> list[tuple[int, EndpointReport]]:
        pid = self._pids[index]
        lost = [
            (number, self._lost_report(target, pid))
            for number, target in self._unfinished[index].items()
        ]
        self._unfinished[index].clear()
        waiting = self._waiting[index]
        lost += [(0, self._lost_report(target, pid)) for target, _addresses in waiting]
        waiting.clear()
        return lost

    def _lost_report(self, target: Target, pid: int) -> EndpointReport:
        failure = ProbeFailure(
            target=target,
            kind=FailureKind.INTERNAL_ERROR,
            detail=f"the scan worker process {pid} ended before scanning this endpoint",
            observed_at_utc=utc_now(),
        )
        observation = EndpointObservation(
            target=target, observed_at_utc=failure.observed_at_utc, handshake=failure
        )
        return judge(observation, failure.observed_at_utc, self._trust, self._options.policy)

    async def stop(self) -> None:
        gc.unfreeze()
        for task in (*self._readers, *self._lookups):
            task.cancel()
        await asyncio.gather(*self._readers, *self._lookups, return_exceptions=True)
        for sock in self._sockets:
            sock.close()  # a worker reads end-of-file and stops
        deadline = time.monotonic() + _STOP_WAIT_S
        for pid in self._pids:
            while True:
                done, _status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    break
                await asyncio.sleep(0.01)


def _worker_main(
    sock: socket.socket,
    *,
    options: ScanOptions,
    trust: TrustStore,
    clock: Callable[[], datetime],
) -> None:
    """The body of a forked worker: scan what the parent sends, then leave at once."""
    code = 0
    try:
        sock.setblocking(False)
        asyncio.run(_worker(sock, options=options, trust=trust, clock=clock))
    except BaseException:  # noqa: BLE001 - the parent reports the lost targets
        code = 1
    finally:
        # No clean-up that belongs to the parent (atexit handlers, buffered output).
        os._exit(code)


async def _worker(
    sock: socket.socket,
    *,
    options: ScanOptions,
    trust: TrustStore,
    clock: Callable[[], datetime],
) -> None:
    loop = asyncio.get_running_loop()
    done: list[tuple[int, EndpointReport]] = []
    ready = asyncio.Event()
    tasks: set[asyncio.Task[None]] = set()
    state = {"pending": 0, "finished": False, "parked": 0}

    async with EndpointScanner(options=options, trust=trust, clock=clock) as scanner:

        def on_parked() -> None:
            ready.set()  # the sender tells the parent the new count

        scanner.on_parked = on_parked

        async def one(number: int, target: Target, addresses: tuple[str, ...] | None) -> None:
            done.append((number, await scanner.report(target, addresses=addresses)))
            state["pending"] -= 1
            ready.set()

        async def send_reports() -> None:
            # Everything finished in one turn of the loop goes in one message.
            while True:
                await ready.wait()
                ready.clear()
                if done:
                    batch = done[:]
                    done.clear()
                    await _send(loop, sock, batch)
                if scanner.parked != state["parked"]:
                    state["parked"] = scanner.parked
                    await _send(loop, sock, (_PARKED, scanner.parked))
                if state["finished"] and not state["pending"] and not done:
                    return

        sender = asyncio.create_task(send_reports())
        try:
            async for batch in _frames(loop, sock):
                if batch is None:
                    break
                for number, target, addresses in batch:
                    state["pending"] += 1
                    task = asyncio.create_task(one(number, target, addresses))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            else:
                return  # the parent is gone
            state["finished"] = True
            ready.set()
            await sender
        finally:
            sender.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(sender, *tasks, return_exceptions=True)


async def _send(loop: asyncio.AbstractEventLoop, sock: socket.socket, message: Any) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    await loop.sock_sendall(sock, _LENGTH.pack(len(payload)) + payload)


async def _frames(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> AsyncIterator[Any]:
    """Unpickled messages from ``sock`` until end-of-file."""
    buffer = bytearray()
    while True:
        data = await loop.sock_recv(sock, _RECV_BYTES)
        if not data:
            return
        buffer += data
        while len(buffer) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(buffer)
            end = _LENGTH.size + size
            if len(buffer) < end:
                break
            message = pickle.loads(buffer[_LENGTH.size : end])
            del buffer[:end]
            yield message

"""Distributed scan cost: the same loopback endpoints scanned and recorded four ways.

1. ``certvigil scan`` in one process (no store): the CPU floor per endpoint; with
   ``--paths scan2``, also ``certvigil scan --workers 2``, two scanner processes, to set
   two distributed workers beside a scan that also runs two processes on these CPUs;
2. ``certvigil run --once`` (the single-machine daemon, recording into PostgreSQL);
3. ``certvigil run --once --distributed`` with 1 worker process, then 2.

For each it prints wall time, endpoints per second, CPU milliseconds per endpoint of
certvigil's own processes (the scanner; the daemon; the scheduler plus the workers'
CPU while the round ran) and of the PostgreSQL server (its postmaster and every
backend, reaped or alive), and the store's write rate (observations per second, and
commits and rows inserted as PostgreSQL counts them). Then the distributed path's CPU
per endpoint relative to the daemon and to the bare scan, and, over several sizes,
how the cost grows with N.

Endpoints are served by one nginx with one address per endpoint
(``bench/scan_throughput.py``), at most 10,000. Larger sizes repeat them: endpoint
``i`` of address ``a`` is scanned under SNI names ``s0.bench.test`` …
``s{R-1}.bench.test`` (every leaf also names ``*.bench.test``), so 100,000 is 10,000
addresses x 10 names, 100,000 distinct endpoint rows and observations. ``certvigil
scan`` takes one ``--sni`` per run, so at R > 1 it runs R times and the figures add up.
Redis and PostgreSQL are throwaway servers on 127.0.0.1 (fsync off unless ``--durable``).

    .venv/bin/python bench/distributed_scan.py                      # N = 1,000
    .venv/bin/python bench/distributed_scan.py --n 10000 --shard-size 500
    .venv/bin/python bench/distributed_scan.py --sizes 1000,10000,100000
    .venv/bin/python bench/distributed_scan.py --n 1000 --paths dist1 --profile-worker w.prof
    .venv/bin/python bench/distributed_scan.py --n 10000 --shard-size 500 \
        --paths scan,dist1,dist2 --rounds 3 --pin

``--rounds R`` measures every path R times, forwards then backwards, and compares each
distributed run with the scan of its own round (and prints the median): runs minutes
apart on a shared machine differ by as much as the paths do. ``--pin`` runs certvigil's
processes on CPU 0 and the servers on the last CPU, so the processes measured never run
at the same time as each other: on a machine whose two vCPUs share a core, a busy
sibling makes the same work cost up to twice the CPU time, and the distributed path
(scheduler, workers, their threads) would pay that where the one-process scan does not.

Needs nginx, redis-server and PostgreSQL (scripts/install-system-deps.sh bench).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from installed_bytecode import as_installed
from proc_cpu import postgres_cpu_s, process_cpu_s
from scan_throughput import MAX_N, endpoint_address, nginx, write_certificates
from tests.support.postgres import ThrowawayPostgres
from tests.support.redis_server import ThrowawayRedis

from certvigil.store import open_store
from certvigil.store.distributed_models import SCAN_WORKERS
from certvigil.store.models import OBSERVATIONS

PORT = 8443
CONCURRENCY = 200
PER_IP = 8
# --inline-targets: the daemon's targets listed in its YAML instead of a target file.
INLINE_TARGETS = [False]
# --pin: certvigil's processes on CPU 0, the servers on the last CPU.
PIN = [False]
# --profile-scheduler: cProfile the scheduler of the 1-worker run into this file.
SCHEDULER_PROFILE: list[Path | None] = [None]
PATHS = ("scan", "scan2", "daemon", "dist1", "dist2")
SCAN_1 = "scan, 1 process, no store"
SCAN_2 = "scan, 2 processes, no store"
PATH_LABELS = (
    SCAN_1,
    SCAN_2,
    "run --once (daemon)",
    "distributed, 1 worker",
    "distributed, 2 workers",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Measured:
    """One path at one size.

    Attributes:
        label: What ran.
        endpoints: Endpoints scanned.
        seconds: Wall time of the run.
        cpu_s: CPU seconds of certvigil's processes.
        db_cpu_s: CPU seconds of the PostgreSQL server over the run (0 without a store).
        stored: Observations in the store afterwards (``None`` without a store).
        commits: Transactions committed in the run's database (PostgreSQL's count).
        inserted: Rows inserted in the run's database (PostgreSQL's count).
    """

    label: str
    endpoints: int
    seconds: float
    cpu_s: float
    db_cpu_s: float = 0.0
    stored: int | None = None
    commits: int = 0
    inserted: int = 0
    detail: str = ""
    """How the CPU divides between processes, when there are several."""


def _ours() -> None:
    """In each certvigil process before it starts: with ``--pin``, onto CPU 0."""
    if PIN[0]:
        os.sched_setaffinity(0, {0})


def _run(command: Sequence[str], *, timeout_s: float) -> tuple[float, float]:
    """Run ``command`` to its end; its wall seconds and CPU seconds (with its children).

    Raises:
        RuntimeError: It failed or outlived ``timeout_s`` (then it is killed).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=_ours
    )
    try:
        _out, err = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise RuntimeError(
            f"{' '.join(command[2:5])}: still running after {timeout_s:.0f}s"
        ) from None
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode not in (0, 1, 2, 3):  # 1-3: findings, not failures
        tail = err.decode(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(command[2:5])}: exit {process.returncode}: {tail}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return seconds, cpu


def _db_counts(pg: ThrowawayPostgres, database: str) -> tuple[int, int]:
    """Commits and rows inserted in ``database`` so far (``pg_stat_database``)."""
    import psycopg

    with psycopg.connect(
        host=pg.host, port=pg.port, user=pg.user, dbname="postgres", autocommit=True
    ) as connection:
        row = connection.execute(
            "SELECT xact_commit, tup_inserted FROM pg_stat_database WHERE datname = %s",
            (database,),
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def _targets(n: int, repeat: int) -> list[dict[str, object]]:
    return [
        {"host": endpoint_address(i), "port": PORT, "sni": f"s{k}.bench.test"}
        for k in range(repeat)
        for i in range(n)
    ]


def _config(
    path: Path, database: str, broker: str, root: Path, targets: list[dict[str, object]], shard: int
) -> Path:
    """The daemon's configuration. Its targets come from a target file, one per SNI
    name, as `certvigil scan -f` reads them (``--inline-targets``: listed in the YAML,
    which costs PyYAML about 50 µs per target to read)."""
    config: dict[str, object] = {
        "database_url": database,
        "distributed": {"broker_url": broker, "shard_size": shard},
        "scan": {"timeout": 5, "concurrency": CONCURRENCY, "per_ip": PER_IP},
        "trust": {"public": False, "ca_files": [str(root)]},
        # The certificate check only, as `certvigil scan` does by default.
        "checks": {"revocation": False, "protocols": False, "grade": False},
        "retention_days": None,
    }
    if INLINE_TARGETS[0]:
        config["targets"] = targets
    else:
        files: dict[object, list[str]] = {}
        for target in targets:
            files.setdefault(target["sni"], []).append(f"{target['host']}:{target['port']}\n")
        sources = []
        for k, (sni, lines) in enumerate(files.items()):
            listed = path.with_name(f"{path.stem}-targets{k}.txt")
            listed.write_text("".join(lines), encoding="utf-8")
            sources.append({"type": "target_file", "path": str(listed), "sni": sni})
        config["sources"] = sources
    if os.environ.get("BENCH_LOG_DIR"):  # each process's log, to see what it did
        config["logging"] = {
            "level": "debug",
            "file": str(Path(os.environ["BENCH_LOG_DIR"]) / f"{path.stem}.log"),
        }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _observations(url: str) -> int:
    with open_store(url, migrate=False) as store, store.read() as connection:
        return int(connection.execute(select(func.count()).select_from(OBSERVATIONS)).scalar_one())


def _worker_rows(url: str) -> set[str]:
    with open_store(url, migrate=False) as store, store.read() as connection:
        return set(connection.execute(select(SCAN_WORKERS.c.name)).scalars())


def _timeout_s(endpoints: int) -> float:
    """A deadline for one run: far above any rate seen, so only a hang reaches it."""
    return 300 + endpoints * 0.1


class Bench:
    """The servers shared by every run, and one database per run."""

    def __init__(
        self, pg: ThrowawayPostgres, redis: ThrowawayRedis, directory: Path, root: Path
    ) -> None:
        self.pg = pg
        self.redis = redis
        self.directory = directory
        self.root = root
        self._databases = 0

    def _database(self, label: str) -> tuple[str, str]:
        self._databases += 1
        name = f"bench_{self._databases}_{label}"
        url = self.pg.create_database(name)
        open_store(url).close()
        return name, url

    def scan(self, n: int, repeat: int, *, workers: int = 1) -> Measured:
        """``certvigil scan --workers W`` over the endpoints, one run per SNI name."""
        targets = self.directory / f"targets{n}.txt"
        targets.write_text("".join(f"{endpoint_address(i)}:{PORT}\n" for i in range(n)))
        seconds = cpu = 0.0
        for k in range(repeat):
            command = [
                sys.executable,
                "-m",
                "certvigil",
                "scan",
                "-f",
                str(targets),
                "--sni",
                f"s{k}.bench.test",
                "--ca-file",
                str(self.root),
                "--no-default-ca",
                "--concurrency",
                str(CONCURRENCY),
                "--per-ip",
                str(PER_IP),
                "--retries",
                "0",
                "--workers",
                str(workers),
                "--json",
                "-o",
                os.devnull,
                "--no-progress",
            ]
            s, c = _run(command, timeout_s=_timeout_s(n))
            seconds += s
            cpu += c
        return Measured(
            label=SCAN_1 if workers == 1 else SCAN_2,
            endpoints=n * repeat,
            seconds=seconds,
            cpu_s=cpu,
        )

    def daemon(self, n: int, repeat: int) -> Measured:
        """``certvigil run --once``: scan and record in one process."""
        name, url = self._database("daemon")
        targets = _targets(n, repeat)
        config = _config(
            self.directory / f"{name}.yaml", url, self.redis.url, self.root, targets, 1
        )
        db_before = postgres_cpu_s(self.pg)
        counts_before = _db_counts(self.pg, name)
        seconds, cpu = _run(
            [sys.executable, "-m", "certvigil", "run", "-c", str(config), "--once"],
            timeout_s=_timeout_s(len(targets)),
        )
        return self._finish(
            "run --once (daemon)", name, url, len(targets), seconds, cpu, db_before, counts_before
        )

    def distributed(
        self, n: int, repeat: int, *, workers: int, shard_size: int, profile: Path | None
    ) -> Measured:
        """``run --once --distributed`` with ``workers`` worker processes already idle."""
        name, url = self._database(f"dist{workers}")
        targets = _targets(n, repeat)
        config = _config(
            self.directory / f"{name}.yaml", url, self.redis.url, self.root, targets, shard_size
        )
        processes = []
        for i in range(workers):
            prefix = [sys.executable]
            if profile is not None and i == 0:
                prefix += ["-m", "cProfile", "-o", str(profile)]
            processes.append(
                subprocess.Popen(
                    [*prefix, "-m", "certvigil", "worker", "-c", str(config), "--name", f"w{i}"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    preexec_fn=_ours,
                )
            )
        try:
            self._wait_idle(url, processes)
            idle = sum(process_cpu_s(p.pid) for p in processes)
            db_before = postgres_cpu_s(self.pg)
            counts_before = _db_counts(self.pg, name)
            scheduler = [sys.executable]
            if profile is not None and SCHEDULER_PROFILE[0] is not None:
                scheduler += ["-m", "cProfile", "-o", str(SCHEDULER_PROFILE[0])]
            seconds, scheduler_cpu = _run(
                [
                    *scheduler,
                    "-m",
                    "certvigil",
                    "run",
                    "-c",
                    str(config),
                    "--once",
                    "--distributed",
                ],
                timeout_s=_timeout_s(len(targets)),
            )
            worker_cpu = sum(process_cpu_s(p.pid) for p in processes) - idle
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(60)
        label = f"distributed, {workers} worker{'s' if workers > 1 else ''}"
        measured = self._finish(
            label,
            name,
            url,
            len(targets),
            seconds,
            scheduler_cpu + worker_cpu,
            db_before,
            counts_before,
        )
        detail = (
            f"scheduler {scheduler_cpu / len(targets) * 1000:.2f} ms/ep "
            f"({scheduler_cpu:.2f} s, start-up included), "
            f"workers {worker_cpu / len(targets) * 1000:.2f} ms/ep ({worker_cpu:.2f} s)"
        )
        return dataclasses.replace(measured, detail=detail)

    def _wait_idle(self, url: str, processes: list[subprocess.Popen[bytes]]) -> None:
        """Until every worker reported and its CPU stopped moving (Celery started)."""
        names = {f"w{i}" for i in range(len(processes))}
        deadline = time.monotonic() + 120
        last = -1.0
        while time.monotonic() < deadline:
            for process in processes:
                if process.poll() is not None:
                    raise RuntimeError(f"a worker exited with {process.returncode}")
            cpu = sum(process_cpu_s(p.pid) for p in processes)
            if names <= _worker_rows(url) and cpu - last < 0.02:
                return
            last = cpu
            time.sleep(0.5)
        raise RuntimeError("the workers did not start within 120 s")

    def _finish(
        self,
        label: str,
        name: str,
        url: str,
        endpoints: int,
        seconds: float,
        cpu: float,
        db_before: float,
        counts_before: tuple[int, int],
    ) -> Measured:
        db_cpu = postgres_cpu_s(self.pg) - db_before
        commits, inserted = _db_counts(self.pg, name)
        # Less what creating the schema did (catalog rows count as inserted rows).
        commits -= counts_before[0]
        inserted -= counts_before[1]
        stored = _observations(url)
        self.pg.drop_database(name)
        return Measured(
            label=label,
            endpoints=endpoints,
            seconds=seconds,
            cpu_s=cpu,
            db_cpu_s=db_cpu,
            stored=stored,
            commits=commits,
            inserted=inserted,
        )


def _print_size(
    rows: list[Measured], shard_size: int, fixed: dict[str, Measured] | None = None
) -> None:
    n = rows[0].endpoints
    print(f"\nN = {n:,} endpoints, shard size {shard_size}, {os.cpu_count()} CPUs")
    print(
        f"{'path':28} {'wall s':>8} {'ep/s':>7} {'CPU ms/ep':>9} {'+db ms/ep':>9} "
        f"{'stored':>7} {'obs/s':>7} {'commits':>8} {'rows/ep':>7}"
    )
    for r in rows:
        stored = "-" if r.stored is None else f"{r.stored}"
        rate = "-" if r.stored is None else f"{r.stored / r.seconds:.0f}"
        per_ep = "-" if r.stored is None else f"{r.inserted / max(r.endpoints, 1):.1f}"
        commits = "-" if r.stored is None else f"{r.commits}"
        print(
            f"{r.label:28} {r.seconds:8.1f} {r.endpoints / r.seconds:7.0f} "
            f"{r.cpu_s / n * 1000:9.2f} {(r.cpu_s + r.db_cpu_s) / n * 1000:9.2f} "
            f"{stored:>7} {rate:>7} {commits:>8} {per_ep:>7}"
        )
    scan = next((r for r in rows if r.label == SCAN_1), None)
    daemon = next((r for r in rows if r.label.startswith("run --once")), None)
    for r in rows:
        if not r.label.startswith("distributed"):
            continue
        parts = []
        if daemon is not None:
            parts.append(f"{r.cpu_s / daemon.cpu_s - 1:+.0%} vs the daemon")
            parts.append(
                f"{(r.cpu_s + r.db_cpu_s) / (daemon.cpu_s + daemon.db_cpu_s) - 1:+.0%} "
                "vs the daemon counting the database"
            )
        if scan is not None:
            parts.append(f"{r.cpu_s / scan.cpu_s - 1:+.0%} vs the bare scan")
        if parts:
            print(f"{r.label}: CPU per endpoint {', '.join(parts)}")
        if r.detail:
            print(f"{r.label}: {r.detail}")
    if fixed:
        print("Less each path's fixed cost (its run over one endpoint: start-up, one round):")
        marginal = {
            r.label: (r.cpu_s - fixed[r.label].cpu_s) / (n - 1) * 1000
            for r in rows
            if r.label in fixed and n > 1
        }
        for label, ms in marginal.items():
            print(f"  {label:28} {ms:6.2f} ms/ep   (fixed {fixed[label].cpu_s:.2f} s)")
        base = marginal.get("run --once (daemon)")
        for label, ms in marginal.items():
            if label.startswith("distributed") and base:
                print(f"  {label}: {ms / base - 1:+.0%} vs the daemon, per endpoint")


def _print_growth(results: dict[int, list[Measured]]) -> None:
    if len(results) < 2:
        return
    sizes = sorted(results)
    print("\nCost as N grows: certvigil CPU ms/endpoint (endpoints/s)")
    print(f"{'path':28} " + " ".join(f"{f'N={s:,}':>18}" for s in sizes))
    labels = [r.label for r in results[sizes[0]]]
    for label in labels:
        cells = []
        for s in sizes:
            r = next((m for m in results[s] if m.label == label), None)
            cells.append(
                "-"
                if r is None
                else f"{r.cpu_s / r.endpoints * 1000:.2f} ({r.endpoints / r.seconds:.0f})"
            )
        print(f"{label:28} " + " ".join(f"{c:>18}" for c in cells))


def _measure(
    bench: Bench, paths: Sequence[str], n: int, repeat: int, shard_size: int, profile: Path | None
) -> list[Measured]:
    """Each path of ``paths`` once, in that order."""
    rows: list[Measured] = []
    for path in paths:
        if path in ("scan", "scan2"):
            rows.append(bench.scan(n, repeat, workers=2 if path == "scan2" else 1))
        elif path == "daemon":
            rows.append(bench.daemon(n, repeat))
        else:
            workers = int(path.removeprefix("dist"))
            rows.append(
                bench.distributed(
                    n,
                    repeat,
                    workers=workers,
                    shard_size=shard_size,
                    profile=profile if workers == 1 else None,
                )
            )
    return rows


def _against_scan(
    rows: list[Measured], fixed: dict[str, Measured]
) -> dict[str, tuple[float, float | None]]:
    """Each distributed path's CPU per endpoint relative to the scan of the same round
    (the one-process scan; two workers also against the two-process scan when it ran):
    all in, and less each path's fixed cost (``None`` without the one-endpoint runs)."""
    by_label = {r.label: r for r in rows}
    pairs = [
        (f"{label} vs {scan_label.split(',')[1].strip()} scan", label, scan_label)
        for label, scan_labels in (
            ("distributed, 1 worker", (SCAN_1,)),
            ("distributed, 2 workers", (SCAN_1, SCAN_2)),
        )
        for scan_label in scan_labels
        if label in by_label and scan_label in by_label
    ]
    ratios: dict[str, tuple[float, float | None]] = {}
    for column, label, scan_label in pairs:
        r, scan = by_label[label], by_label[scan_label]
        marginal: float | None = None
        if label in fixed and scan_label in fixed and scan.endpoints > 1:
            marginal = (r.cpu_s - fixed[label].cpu_s) / (scan.cpu_s - fixed[scan_label].cpu_s) - 1
        ratios[column] = (r.cpu_s / scan.cpu_s - 1, marginal)
    return ratios


def _print_rounds(rounds: list[tuple[list[Measured], dict[str, Measured]]]) -> None:
    """Every round's distributed paths against its own scan, and the median."""
    per_round = [_against_scan(rows, fixed) for rows, fixed in rounds]
    labels = list(per_round[0]) if per_round else []
    if len(rounds) < 2 or not labels:
        return
    n = rounds[0][0][0].endpoints
    print(f"\nN = {n:,}, {len(rounds)} rounds, paths alternating in order: CPU per endpoint")
    print("against the scan of the same round, all in / less each path's fixed cost")
    print(f"{'round':>5} {'scan ms/ep':>10} " + " ".join(f"{label:>36}" for label in labels))

    def cell(ratio: tuple[float, float | None]) -> str:
        all_in, less = ratio
        return f"{all_in:+.0%} / " + ("-" if less is None else f"{less:+.0%}")

    for k, ((rows, _fixed), ratios) in enumerate(zip(rounds, per_round, strict=True), 1):
        scan = next((r for r in rows if r.label == SCAN_1), None)
        scan_ms = "-" if scan is None else f"{scan.cpu_s / scan.endpoints * 1000:.2f}"
        print(f"{k:>5} {scan_ms:>10} " + " ".join(f"{cell(ratios[label]):>36}" for label in labels))
    medians = []
    for label in labels:
        all_in = statistics.median(r[label][0] for r in per_round)
        less = [v for r in per_round if (v := r[label][1]) is not None]
        medians.append(cell((all_in, statistics.median(less) if less else None)))
    print(f"{'median':>16} " + " ".join(f"{c:>36}" for c in medians))


def _sizes(args: argparse.Namespace) -> list[tuple[int, int]]:
    """(distinct endpoints, SNI names per endpoint) for each size asked for."""
    if not args.sizes:
        return [(args.n, args.repeat)]
    pairs = []
    for size in (int(s) for s in args.sizes.split(",")):
        n = min(size, MAX_N)
        if size < 1 or size % n:
            raise SystemExit(f"size {size}: above {MAX_N} it must be a multiple of {MAX_N}")
        pairs.append((n, size // n))
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help=f"distinct endpoints (<= {MAX_N})")
    parser.add_argument("--repeat", type=int, default=1, help="SNI names per endpoint")
    parser.add_argument("--sizes", help="comma-separated totals, e.g. 1000,10000,100000")
    parser.add_argument("--shard-size", type=int, default=500)
    parser.add_argument("--paths", default=",".join(PATHS), help=f"of {','.join(PATHS)}")
    parser.add_argument("--durable", action="store_true", help="PostgreSQL with fsync on")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every path this many times, alternating their order, and print "
        "each round's ratio to its own scan and the median",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="run certvigil's processes on CPU 0 and the servers (nginx, PostgreSQL, "
        "Redis) on the last CPU, so the processes measured never run at the same time "
        "as each other (two vCPUs of one core slow each other down by up to half)",
    )
    parser.add_argument(
        "--no-fixed", action="store_true", help="skip the one-endpoint runs (fixed costs)"
    )
    parser.add_argument(
        "--profile-worker", type=Path, help="cProfile the first worker into this file"
    )
    parser.add_argument(
        "--inline-targets",
        action="store_true",
        help="list the daemon's targets in its YAML (default: a target file, as scan's)",
    )
    parser.add_argument(
        "--profile-scheduler",
        type=Path,
        help="cProfile the scheduler of the run with --profile-worker into this file",
    )
    args = parser.parse_args()
    SCHEDULER_PROFILE[0] = args.profile_scheduler
    INLINE_TARGETS[0] = args.inline_targets
    PIN[0] = args.pin
    if args.pin and (os.cpu_count() or 1) < 2:
        parser.error("--pin needs at least two CPUs")
    if not 1 <= args.n <= MAX_N or args.repeat < 1 or args.rounds < 1:
        parser.error(f"--n must be 1..{MAX_N}, --repeat and --rounds at least 1")
    paths = [p for p in args.paths.split(",") if p]
    if unknown := set(paths) - set(PATHS):
        parser.error(f"--paths: unknown {sorted(unknown)}")
    sizes = _sizes(args)
    served = max(n for n, _r in sizes)
    as_installed()
    if args.pin:
        # The servers the bench starts (nginx, PostgreSQL, Redis) inherit this.
        os.sched_setaffinity(0, {(os.cpu_count() or 2) - 1})
    results: dict[int, list[Measured]] = {}
    with tempfile.TemporaryDirectory(prefix="certvigil-bench-dist-") as tmp:
        directory = Path(tmp)
        root, key, _cert_s = write_certificates(
            served, directory, extra_dns_names=("*.bench.test",)
        )
        with nginx(served, directory, key), ThrowawayPostgres(durable=args.durable) as pg:
            redis = ThrowawayRedis().start()
            try:
                bench = Bench(pg, redis, directory, root)
                for n, repeat in sizes:
                    rounds: list[tuple[list[Measured], dict[str, Measured]]] = []
                    for k in range(args.rounds):
                        # Forwards, then backwards: a machine that slows or speeds up
                        # during a round weighs on each path alike.
                        order = paths if k % 2 == 0 else paths[::-1]
                        fixed: dict[str, Measured] = {}
                        if not args.no_fixed:
                            for one in _measure(bench, order, 1, 1, args.shard_size, None):
                                fixed[one.label] = one
                        rows = _measure(
                            bench, order, n, repeat, args.shard_size, args.profile_worker
                        )
                        rows.sort(key=lambda r: PATH_LABELS.index(r.label))
                        rounds.append((rows, fixed))
                        if args.rounds > 1:
                            print(f"\nround {k + 1} of {args.rounds}, in order {','.join(order)}")
                        _print_size(rows, args.shard_size, fixed)
                        sys.stdout.flush()
                    results[n * repeat] = rounds[0][0]
                    _print_rounds(rounds)
            finally:
                redis.stop()
    _print_growth(results)
    print(
        "\nCPU ms/ep: certvigil's processes; +db: with the PostgreSQL server's CPU. "
        f"fsync {'on' if args.durable else 'off'}. Load average at the end: "
        f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

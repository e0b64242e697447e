"""Distributed scan cost: the same N loopback endpoints scanned four ways.

1. ``certvigil scan`` in one process (no store): the CPU floor per endpoint;
2. ``certvigil run --once`` (the single-machine daemon, recording into PostgreSQL);
3. ``certvigil run --once --distributed`` with 1 worker process, then 2.

For each it prints wall time, endpoints per second, and CPU milliseconds per endpoint
(scanner, or scheduler + workers; the database server's own CPU is not counted), and
for the distributed runs the overhead per endpoint relative to the daemon and to the
bare scan, and the store's write rate. Endpoints are served by one nginx, one per
loopback address (``bench/scan_throughput.py``), so the per-address limit does not
throttle; Redis and PostgreSQL are throwaway servers on 127.0.0.1.

    .venv/bin/python bench/distributed_scan.py             # N = 2000
    .venv/bin/python bench/distributed_scan.py --n 10000 --shard-size 500

Needs nginx, redis-server and PostgreSQL (scripts/install-system-deps.sh bench).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scan_throughput import endpoint_address, nginx, run_scanner, write_certificates
from tests.support.postgres import ThrowawayPostgres
from tests.support.redis_server import ThrowawayRedis

from certvigil.store import open_store
from certvigil.store.distributed_models import SCAN_WORKERS
from certvigil.store.models import OBSERVATIONS

PORT = 8443


def _wait4(command: list[str]) -> tuple[float, float, int]:
    """Run ``command``; its wall seconds, CPU seconds (with reaped children), exit code."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _pid, status, usage = os.wait4(process.pid, 0)
    return (
        time.perf_counter() - started,
        usage.ru_utime + usage.ru_stime,
        os.waitstatus_to_exitcode(status),
    )


def _config(path: Path, database: str, broker: str, root: Path, n: int, shard_size: int) -> Path:
    config = {
        "database_url": database,
        "distributed": {"broker_url": broker, "shard_size": shard_size},
        "scan": {"timeout": 5, "concurrency": 200, "per_ip": 8},
        "trust": {"public": False, "ca_files": [str(root)]},
        # The certificate check only, as `certvigil scan` does by default.
        "checks": {"revocation": False, "protocols": False, "grade": False},
        "retention_days": None,
        "targets": [{"host": endpoint_address(i), "port": PORT} for i in range(n)],
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def _observations(url: str) -> int:
    with open_store(url, migrate=False) as store, store.read() as connection:
        return int(connection.execute(select(func.count()).select_from(OBSERVATIONS)).scalar_one())


def _workers_cpu(url: str) -> dict[str, float]:
    with open_store(url, migrate=False) as store, store.read() as connection:
        rows = connection.execute(select(SCAN_WORKERS.c.name, SCAN_WORKERS.c.cpu_s))
        return {row.name: row.cpu_s for row in rows}


def _distributed(
    pg: ThrowawayPostgres,
    redis: ThrowawayRedis,
    directory: Path,
    root: Path,
    *,
    n: int,
    workers: int,
    shard_size: int,
    label: str,
) -> tuple[float, float, int]:
    url = pg.create_database(label)
    open_store(url).close()
    config = _config(directory / f"{label}.yaml", url, redis.url, root, n, shard_size)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "certvigil", "worker", "-c", str(config), "--name", f"w{i}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(workers)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(_workers_cpu(url)) < workers and time.monotonic() < deadline:
            time.sleep(0.2)
        idle = _workers_cpu(url)
        time.sleep(1.0)  # let Celery finish its own start-up before measuring
        idle = _workers_cpu(url)
        command = [
            sys.executable,
            "-m",
            "certvigil",
            "run",
            "-c",
            str(config),
            "--once",
            "--distributed",
        ]
        seconds, scheduler_cpu, code = _wait4(command)
        time.sleep(0.5)
        busy = _workers_cpu(url)
        worker_cpu = sum(busy[name] - idle.get(name, 0.0) for name in busy)
        return seconds, scheduler_cpu + worker_cpu, _observations(url) if code == 0 else -code
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--shard-size", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="certvigil-bench-dist-") as tmp:
        directory = Path(tmp)
        root, key, _cert_s = write_certificates(args.n, directory)
        targets = directory / "targets.txt"
        targets.write_text("".join(f"{endpoint_address(i)}:{PORT}\n" for i in range(args.n)))
        with nginx(args.n, directory, key), ThrowawayPostgres() as pg:
            redis = ThrowawayRedis().start()
            try:
                rows: list[tuple[str, float, float, int]] = []
                scan = run_scanner(targets, root, concurrency=200, per_ip=8, workers=1)
                rows.append(("scan, 1 process, no store", scan.seconds, scan.cpu_s, args.n))
                url = pg.create_database("daemon")
                open_store(url).close()
                config = _config(directory / "daemon.yaml", url, redis.url, root, args.n, 1)
                seconds, cpu, _code = _wait4(
                    [sys.executable, "-m", "certvigil", "run", "-c", str(config), "--once"]
                )
                rows.append(("run --once (daemon)", seconds, cpu, _observations(url)))
                for workers in (1, 2):
                    seconds, cpu, stored = _distributed(
                        pg,
                        redis,
                        directory,
                        root,
                        n=args.n,
                        workers=workers,
                        shard_size=args.shard_size,
                        label=f"dist{workers}",
                    )
                    rows.append((f"distributed, {workers} worker(s)", seconds, cpu, stored))
            finally:
                redis.stop()
    print(f"N = {args.n} endpoints, shard size {args.shard_size}, {os.cpu_count()} CPUs")
    print(f"{'path':30} {'wall s':>8} {'ep/s':>8} {'CPU ms/ep':>10} {'stored':>8}")
    for label, seconds, cpu, stored in rows:
        print(
            f"{label:30} {seconds:8.2f} {args.n / seconds:8.0f} "
            f"{cpu / args.n * 1000:10.2f} {stored:8d}"
        )
    base_scan = rows[0][2]
    base_daemon = rows[1][2]
    for label, _seconds, cpu, _stored in rows[2:]:
        print(
            f"{label}: CPU per endpoint {cpu / base_daemon - 1:+.0%} vs the daemon, "
            f"{cpu / base_scan - 1:+.0%} vs the bare scan"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Dashboard benchmark: the overview and inventory pages on a large inventory.

Fills a fresh store with ``--certificates`` certificates (default 100,000) and
``--observations`` observations (default 1,000,000) on ``--endpoints`` endpoints
(default 20,000), with the bulk fill of ``bench/store_ingest.py`` (set-up, not
measured). Then, through the real dashboard app in process (httpx's ASGI transport, a
logged-in session, the whole request: session lookup, queries, template, SVG):

* ``GET /dashboard/`` (the overview: counts, the 52-week expiry timeline, issuers,
  grades, open alerts), and the overview's queries alone;
* ``GET /dashboard/inventory`` (first page of 50, soonest expiry first), a search
  (``q=host00012``) and a late page sorted by host.

Prints median and 95th percentile of ``--repeat`` runs each. Goal: the overview under
300 ms with 100,000 certificates and 1,000,000 observations on SQLite.

    .venv/bin/python bench/dashboard_overview.py                # full size, SQLite
    .venv/bin/python bench/dashboard_overview.py --scale 0.1    # a tenth, quicker
    .venv/bin/python bench/dashboard_overview.py --db-url postgresql+psycopg://...
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from fastapi import FastAPI

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from store_ingest import NOW, fill

from certvigil.server.dashboard import router as dashboard_pages
from certvigil.server.dashboard.auth import DashboardSettings, hash_password
from certvigil.server.dashboard.router import dashboard_router
from certvigil.store import Store, open_store
from certvigil.store import dashboard as board

PASSWORD = "bench password 1"


def _percentiles(runs: list[float]) -> tuple[float, float]:
    ordered = sorted(runs)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p95 * 1000


async def _timed(call: Callable[[], Awaitable[httpx.Response]], repeat: int) -> list[float]:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        response = await call()
        runs.append(time.perf_counter() - start)
        if response.status_code != 200:
            raise RuntimeError(f"{response.request.url}: HTTP {response.status_code}")
    return runs


async def measure_pages(
    store: Store, *, repeat: int, only: dict[str, str] | None = None
) -> dict[str, list[float]]:
    """Logs in and times each page ``repeat`` times (after one warm-up each)."""
    app = FastAPI()
    app.include_router(dashboard_router(store, settings=DashboardSettings(clock=lambda: NOW)))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://bench.test") as client:
        form = await client.get("/dashboard/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        if token is None:
            raise RuntimeError("no log-in form")
        await client.post(
            "/dashboard/login",
            data={"csrf_token": token.group(1), "name": "bench", "password": PASSWORD},
        )
        pages = {
            "GET /dashboard/ (overview)": "/dashboard/",
            "GET /dashboard/inventory": "/dashboard/inventory",
            "GET /dashboard/inventory?q=host00012": "/dashboard/inventory?q=host00012",
            "GET /dashboard/inventory sorted by host, page 20": (
                "/dashboard/inventory?sort=host&page=20"
            ),
        }
        results: dict[str, list[float]] = {}
        for label, path in (only or pages).items():
            await client.get(path)
            results[label] = await _timed(lambda path=path: client.get(path), repeat)
    return results


def measure_queries(store: Store, *, repeat: int) -> list[float]:
    """Times the overview's queries alone, without HTTP or templates."""
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        with store.read() as connection:
            board.overview(connection, now=NOW)
        runs.append(time.perf_counter() - start)
    return runs


def run(url: str, *, endpoints: int, certificates: int, observations: int, repeat: int) -> None:
    """Fills the store at ``url`` and prints the figures."""
    with open_store(url) as store:
        start = time.perf_counter()
        rows = fill(
            store, endpoints=endpoints, certificates=certificates, observations=observations
        )
        print(f"filled {rows:,} rows in {time.perf_counter() - start:.1f} s ({store.dialect_name})")
        with store.write() as connection:
            board.add_user(connection, name="bench", password_hash=hash_password(PASSWORD), now=NOW)
        figures = asyncio.run(measure_pages(store, repeat=repeat))
        # The page keeps the inventory's aggregates while nothing is recorded (up to
        # OVERVIEW_KEEP_S): measured again with nothing kept, each request recomputing.
        kept = dashboard_pages.OVERVIEW_KEEP_S
        dashboard_pages.OVERVIEW_KEEP_S = 0.0
        try:
            figures |= asyncio.run(
                measure_pages(
                    store,
                    repeat=repeat,
                    only={"GET /dashboard/ (overview), nothing kept": "/dashboard/"},
                )
            )
        finally:
            dashboard_pages.OVERVIEW_KEEP_S = kept
        figures["overview queries alone"] = measure_queries(store, repeat=repeat)
    print(
        f"\n{certificates:,} certificates, {observations:,} observations, "
        f"{endpoints:,} endpoints; {repeat} runs each"
    )
    print(f"{'':52} {'median ms':>10} {'p95 ms':>10}")
    for label, runs in figures.items():
        median, p95 = _percentiles(runs)
        print(f"{label:52} {median:10.1f} {p95:10.1f}")
    for label in ("GET /dashboard/ (overview)", "GET /dashboard/ (overview), nothing kept"):
        median = _percentiles(figures[label])[0]
        print(f"goal: {label} under 300 ms: {'met' if median < 300 else 'NOT met'}")


def main() -> None:
    """Parses options and runs the benchmark."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="Multiply every size by this.")
    parser.add_argument("--certificates", type=int, default=100_000)
    parser.add_argument("--observations", type=int, default=1_000_000)
    parser.add_argument("--endpoints", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=15, help="Runs per page.")
    parser.add_argument("--db-url", help="An empty database to use instead of a SQLite file.")
    args = parser.parse_args()
    sizes = {
        "endpoints": max(1, int(args.endpoints * args.scale)),
        "certificates": max(1, int(args.certificates * args.scale)),
        "observations": max(1, int(args.observations * args.scale)),
    }
    load_before = os.getloadavg()
    if args.db_url:
        run(args.db_url, repeat=args.repeat, **sizes)
    else:
        with tempfile.TemporaryDirectory(prefix="certvigil-bench-") as workdir:
            run(f"sqlite:///{Path(workdir) / 'bench.db'}", repeat=args.repeat, **sizes)
    load_after = os.getloadavg()
    print(
        "load average (1, 5, 15 min): before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in load_after)
    )


if __name__ == "__main__":
    main()

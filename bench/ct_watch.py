"""CT benchmark: the whole watch over a local static log, and entry-to-alert latency.

Two figures, both through ``CtWatch`` as ``certvigil ct watch`` runs it (HTTP to the
local log server, checkpoint and tiles verified, names matched, findings, sightings,
alerts and positions committed to a SQLite store every ``commit_every`` entries):

* **throughput**: a log of ``--entries`` entries (Navigli's real leaves re-indexed, each
  certificate every 1,024 entries) read from entry 0, watching the domains below and
  999 that never occur; entries/s over the pass (wall clock).
* **latency**: the watch is at the end of a 256-entry log; the log grows by one tile
  (256 entries holding watched names) and one pass runs. Latency is the time from the new
  checkpoint being published to the first alert of the new entries being committed
  (queued for delivery), per round. A running ``ct watch`` adds up to its
  ``poll_interval`` (60 s by default) of waiting before that pass starts.

    .venv/bin/python bench/ct_watch.py
    .venv/bin/python bench/ct_watch.py --entries 16384 --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select

from certvigil.alerts.engine import AlertEngine
from certvigil.config.ct import CtSettings
from certvigil.ct.fetch.http import FetchPolicy
from certvigil.ct.log_list import TailPlan
from certvigil.ct.static_ct import checkpoint_origin
from certvigil.ct.watch.logs import configured_log
from certvigil.ct.watch.runner import CtWatch
from certvigil.store import open_store
from certvigil.store.models import ALERTS

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.ct_log_server import CtLogServer, TestLogKey, synthetic_static_log


def _settings(server: CtLogServer, key: TestLogKey, watched: list[str]) -> CtSettings:
    rng = random.Random(7)
    decoys = {
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(10)) + ".com"
        for _ in range(999)
    }
    return CtSettings.model_validate(
        {
            "use_log_list": False,
            "logs": [
                {
                    "monitoring_url": server.url("log"),
                    "key": base64.b64encode(key.der).decode(),
                    "description": "local",
                }
            ],
            "domains": [{"name": d} for d in (*watched, *sorted(decoys - set(watched)))],
            # Look-alikes cost 10-25 s to index 1,000 domains per start; bench/ct_names_match.py
            # measures their per-entry cost.
            "lookalikes": False,
            "caa": False,
        }
    )


def _publish(server: CtLogServer, key: TestLogKey, size: int) -> None:
    files, root = synthetic_static_log(size)
    site = server.site("log")
    site.files.update(files)
    site.files["checkpoint"] = key.checkpoint(checkpoint_origin(server.url("log")), size, root)


async def _pass(watch: CtWatch, plan: TailPlan, *, from_start: bool) -> int:
    async with httpx.AsyncClient() as client:
        report = await watch.pass_log(plan, client, from_start=from_start)
    return report.handled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=8192, help="multiple of 256")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--watched",
        default="mexi.my,gamen.net",
        help="comma-separated domains that occur in the data (the default ones match "
        "about 5%% of entries; cynova.dev,chixbbq.org about 17%%)",
    )
    args = parser.parse_args()
    policy = FetchPolicy(deadline=10.0)
    watched = [d for d in args.watched.split(",") if d]
    with tempfile.TemporaryDirectory() as scratch, CtLogServer() as server:
        key = TestLogKey()
        settings = _settings(server, key, watched)
        plan = TailPlan(configured_log(settings.logs[0]), None)

        # Throughput: the whole log from entry 0.
        store = open_store(str(Path(scratch) / "throughput.db"))
        _publish(server, key, args.entries)
        watch = CtWatch(
            settings,
            store,
            AlertEngine(store),
            base_dir=Path(scratch),
            policy=policy,
            log_line=lambda _t: None,
        )
        watch.prepare()
        start = time.perf_counter()
        handled = asyncio.run(_pass(watch, plan, from_start=True))
        wall = time.perf_counter() - start
        with store.read() as connection:
            alerts = connection.execute(select(func.count()).select_from(ALERTS)).scalar()
        print(
            f"throughput  {handled:,} entries in {wall:.2f} s: {handled / wall:,.0f} entries/s "
            f"(wall, HTTP + verify + match + store), {alerts} alerts queued"
        )
        store.close()

        # Latency, per round: a fresh store at the end of a 256-entry log; the log grows
        # by one tile (Navigli's second, holding watched names); one pass.
        latencies: list[float] = []
        for number in range(args.rounds):
            server.sites.clear()
            _publish(server, key, 256)
            store = open_store(str(Path(scratch) / f"latency{number}.db"))
            watch = CtWatch(
                settings,
                store,
                AlertEngine(store),
                base_dir=Path(scratch),
                policy=policy,
                log_line=lambda _t: None,
            )
            watch.prepare()
            asyncio.run(_pass(watch, plan, from_start=False))  # at the end
            _publish(server, key, 512)
            published = datetime.now(UTC)
            asyncio.run(_pass(watch, plan, from_start=False))
            with store.read() as connection:
                first = connection.execute(select(func.min(ALERTS.c.opened_at_utc))).scalar()
            store.close()
            if first is None:
                raise SystemExit("no alert for the new tile: watch a domain it holds")
            latencies.append((first - published).total_seconds() * 1000)
        print(
            f"latency     entry published -> alert queued: median "
            f"{statistics.median(latencies):.0f} ms, max {max(latencies):.0f} ms over "
            f"{len(latencies)} rounds (one pass, no poll wait)"
        )


if __name__ == "__main__":
    main()

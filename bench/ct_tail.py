"""CT benchmark: end-to-end tail of a local static-ct-api log, HTTP included, in entries/s.

A local HTTP log server (``tests/support/ct_log_server.py``, on 127.0.0.1) serves a static
log of ``--entries`` entries (default 16,384, a multiple of 256, at most 65,536) made of
Navigli2025h2's real TileLeafs re-indexed, with its level-0 and level-1 hash tiles, the real
issuers and a checkpoint signed with a generated key. ``tail_once`` then reads the whole
log from entry 0, as ``certvigil ct watch --once --from-start`` will: checkpoint verified,
root recomputed from the hash tiles, every data tile fetched, parsed, checked against its
level-0 tile and bound to the tree, issuers fetched once, entries handed out in order
(here to a handler that only counts them). The figure is entries per wall-clock second
for the pass, over ``--rounds`` passes (a fresh tail each, so issuers are fetched again);
with ``--gzip`` every answer is gzipped.

    .venv/bin/python bench/ct_tail.py
    .venv/bin/python bench/ct_tail.py --entries 65536 --parallel 4 --gzip
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

from certvigil.ct.fetch.http import FetchPolicy
from certvigil.ct.fetch.tail import TailItem, TailState, tail_once
from certvigil.ct.log_list import CtLog, LogProtocol, LogState
from certvigil.ct.signature import log_id
from certvigil.ct.static_ct import checkpoint_origin

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.ct_log_server import CtLogServer, TestLogKey, synthetic_static_log


def main() -> None:
    """Serve the log, tail it ``--rounds`` times, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=16_384)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=2, help="tiles fetched ahead")
    parser.add_argument("--gzip", action="store_true")
    args = parser.parse_args()

    key = TestLogKey()
    files, root = synthetic_static_log(args.entries)
    with CtLogServer() as server:
        server.gzip = args.gzip
        site = server.site("log")
        site.files.update(files)
        log = CtLog(
            description="local static log",
            operator="bench",
            log_id=log_id(key.der),
            key=key.der,
            protocol=LogProtocol.STATIC,
            url=server.url("log"),
            submission_url=server.url("log"),
            mmd=60,
            state=LogState.USABLE,
        )
        site.files["checkpoint"] = key.checkpoint(
            checkpoint_origin(log.submission_url), args.entries, root
        )
        policy = FetchPolicy(parallel=args.parallel)
        rates = []
        for _ in range(args.rounds):
            count = 0

            def handle(item: TailItem) -> None:
                nonlocal count
                count += 1

            started = time.perf_counter()
            result = asyncio.run(
                tail_once(log, TailState(), handle, policy=policy, parallel=args.parallel)
            )
            elapsed = time.perf_counter() - started
            if result.state.last_error or count != args.entries:
                raise SystemExit(f"the pass failed: {result.state.last_error or count}")
            rates.append(count / elapsed)
        requests = len(server.requests)

    print(
        f"entries: {args.entries} per pass, {args.rounds} passes, parallel {args.parallel}, "
        f"gzip {'on' if args.gzip else 'off'}; {requests} HTTP requests in all"
    )
    print(
        f"end-to-end tail (HTTP, verification, parsing): median {statistics.median(rates):,.0f} "
        f"entries/s (min {min(rates):,.0f}, max {max(rates):,.0f})"
    )


if __name__ == "__main__":
    main()

"""Benchmark: many blackholes and a few healthy endpoints on one address, default options.

One loopback address serves a silent server (accepts TCP, never answers: a blackhole)
and a healthy TLS server. The scan gets ``--silent`` endpoints of the first and
``--healthy`` of the second (told apart by SNI name), the healthy ones at the end of the
input (the worst case) or spread through it, and runs with ``ScanOptions()`` defaults
(8 connections per address, 5 s time-outs, no retry of time-outs). It prints when each
healthy verdict arrived, when the last report arrived, and the count of each outcome.

    .venv/bin/python bench/silent_address.py [--silent 490] [--healthy 10] [--layout end]

The issue's figure on the earlier defaults (10 s handshake time-out, time-outs retried
once, no notion of a silent address) was 1,232 s in all, the first healthy verdict after
1,101 s.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from collections import Counter
from pathlib import Path

from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import ThrowawayPki
from certvigil.demo.servers import TlsServer
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import scan_stream
from certvigil.targets.target import Target

# The test-only servers live in tests/support/, beside this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.fault_servers import SilentServer


def main() -> None:
    """Start the servers, scan, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--silent", type=int, default=490)
    parser.add_argument("--healthy", type=int, default=10)
    parser.add_argument("--layout", choices=("end", "spread"), default="end")
    parser.add_argument("--handshake-timeout", type=float, default=None)
    args = parser.parse_args()
    pki = ThrowawayPki.create()
    leaf = pki.issue_leaf(dns_names=("*.zoo.test",))
    trust = TrustStore.from_certificates([pki.root.certificate], source="bench root")
    options = ScanOptions()
    if args.handshake_timeout is not None:
        options = ScanOptions(handshake_timeout_s=args.handshake_timeout)
    host = "127.0.0.1"
    with (
        SilentServer(host=host) as silent,
        TlsServer(chain=pki.served_chain_der(leaf), key_pem=leaf.key_pem, host=host) as good,
    ):
        targets = [
            Target(host=host, port=silent.port, sni=f"s{i}.zoo.test") for i in range(args.silent)
        ]
        healthy = [
            Target(host=host, port=good.port, sni=f"h{i}.zoo.test") for i in range(args.healthy)
        ]
        if args.layout == "end":
            targets += healthy
        else:
            for target in healthy:
                targets.insert(random.Random(len(targets)).randrange(len(targets) + 1), target)

        async def run() -> tuple[list[float], float, Counter[str]]:
            started = time.perf_counter()
            arrivals: list[float] = []
            outcomes: Counter[str] = Counter()
            async for report in scan_stream(targets, options=options, trust=trust):
                at = time.perf_counter() - started
                outcomes[report.failure.kind.value if report.failure else "observed"] += 1
                if report.target.port == good.port:
                    arrivals.append(at)
            return arrivals, time.perf_counter() - started, outcomes

        arrivals, total_s, outcomes = asyncio.run(run())
    print(
        f"{args.silent} silent + {args.healthy} healthy endpoints on {host} ({args.layout}), "
        f"per-IP {options.per_ip_concurrency}, handshake time-out {options.handshake_timeout_s:g} s"
    )
    print("healthy verdicts at: " + ", ".join(f"{at:.1f} s" for at in arrivals))
    print(f"all {len(targets)} reports after {total_s:.1f} s; outcomes: {dict(outcomes)}")


if __name__ == "__main__":
    main()

"""Per-endpoint analysis cost: microseconds to judge a typical 2-3 certificate chain.

Run: .venv/bin/python bench/analysis_cost.py [--endpoints N]

Each endpoint gets its own leaf (as in a real scan) under an intermediate shared by all
(its facts and its verified path are cached after the first endpoint), judged against
Mozilla's roots plus the throwaway root. Also measured: the same with RSA keys, the
14 real served chains with every cache cold but the facts, and an identical chain
seen again in the same scan (the verdict cache).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from certvigil.analysis.certificate import parse_certificate
from certvigil.analysis.chain import judge_chain
from certvigil.analysis.report import analyse_endpoint
from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import KeySpec, ThrowawayPki, shared_key
from certvigil.files.certificates import load_certificate_file
from certvigil.files.truststore import load_trust_store
from certvigil.observed.handshake import TlsObservation
from certvigil.targets.target import Target

NOW = datetime.now(UTC)
REAL = Path(__file__).resolve().parent.parent / "tests" / "data" / "certs" / "real-sites"


def _observation(name: str, chain: Sequence[bytes]) -> TlsObservation:
    return TlsObservation(
        target=Target(host=name, port=443),
        peer_address="127.0.0.1",
        observed_at_utc=NOW,
        chain_der=tuple(chain),
        protocol="TLSv1.3",
        cipher="TLS_AES_128_GCM_SHA256",
        connect_s=0.001,
        handshake_s=0.002,
    )


def _time(label: str, count: int, run: Callable[[int], object]) -> None:
    # CPU time of this process is the cost; wall time also counts waiting for a CPU on
    # a shared machine, so both are shown.
    wall, cpu = time.perf_counter(), time.process_time()
    for index in range(count):
        run(index)
    cpu_us = (time.process_time() - cpu) / count * 1e6
    wall_us = (time.perf_counter() - wall) / count * 1e6
    print(f"{label:<56} {cpu_us:7.0f} µs CPU  {wall_us:7.0f} µs wall  ({count} endpoints)")


def _generated(trust_default: TrustStore, key: KeySpec, count: int, label: str) -> None:
    pki = ThrowawayPki.create(now_utc=NOW, key=key)
    trust = TrustStore.from_certificates(
        [pki.root.certificate], source="bench", public=trust_default.anchors
    )
    names = [f"host{i}.example.test" for i in range(count)]
    leaf_key = shared_key(key)
    leaves = [pki.intermediate.issue_leaf(dns_names=(n,), key=leaf_key) for n in names]
    observations = [
        _observation(n, pki.served_chain_der(leaf)) for n, leaf in zip(names, leaves, strict=True)
    ]
    _time(
        f"{label}: full analyse_endpoint",
        count,
        lambda i: analyse_endpoint(observations[i], now=NOW, trust=trust),
    )
    # Fresh leaves again, to split the cost into parsing and verification.
    leaves = [pki.intermediate.issue_leaf(dns_names=(n,), key=leaf_key) for n in names]
    chains = [pki.served_chain_der(leaf) for leaf in leaves]
    _time(
        f"{label}: parse + facts of the leaf only", count, lambda i: parse_certificate(chains[i][0])
    )
    _time(
        f"{label}: chain verification only",
        count,
        lambda i: judge_chain(chains[i], now=NOW, trust=trust),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=2000)
    count = parser.parse_args().endpoints
    started = time.perf_counter()
    mozilla = load_trust_store()
    load_ms = (time.perf_counter() - started) * 1e3
    print(f"trust store: {len(mozilla)} anchors loaded in {load_ms:.0f} ms")
    _generated(mozilla, KeySpec.EC_P256, count, "EC P-256 leaf + intermediate")
    _generated(mozilla, KeySpec.RSA_2048, count, "RSA-2048 leaf + intermediate")
    real = []
    for path in sorted(REAL.glob("*.chain.pem")):
        chain = load_certificate_file(path)
        site = path.name.removesuffix(".chain.pem")
        real.append((_observation(site, chain), parse_certificate(chain[0]).facts.not_before_utc))

    # A different `now` per call defeats the verdict cache, and emptying the upper-path
    # cache makes every call run the full verification.
    def full(i: int) -> object:
        mozilla.verified_upper_paths.clear()
        observation, issued = real[i % len(real)]
        return analyse_endpoint(
            observation, now=issued + timedelta(days=1, microseconds=i), trust=mozilla
        )

    _time("real served chains (14 sites), full verification each", count, full)
    fixed_now = [when + timedelta(days=1) for _, when in real]
    _time(
        "same chain again in one scan (one `now`: verdict cache)",
        count,
        lambda i: analyse_endpoint(
            real[i % len(real)][0], now=fixed_now[i % len(real)], trust=mozilla
        ),
    )


if __name__ == "__main__":
    main()

"""Benchmark: time to check one endpoint's revocation on loopback, and a large CRL's cost.

Starts a loopback OCSP responder and CRL publisher (``tests.support.ocsp_responder``)
and an ``openssl s_server`` on 127.0.0.1 stapling a good answer, then times

* the whole revocation check of one endpoint: staple capture (one handshake), CRL and
  OCSP fetches for leaf and intermediate, judgement, with a cold CRL cache and a warm
  one;
* downloading, verifying and searching a CRL with ``--crl-entries`` entries.

Not a test: it prints figures.

    .venv/bin/python bench/revocation_cost.py [--rounds 20] [--crl-entries 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from certvigil.analysis.revocation import judge_revocation
from certvigil.analysis.revocation_model import RevocationStatus
from certvigil.demo.pki import ThrowawayPki
from certvigil.observed.handshake import ProbeFailure
from certvigil.observed.revocation import RevocationObservation
from certvigil.probe.ocsp_fetch import build_ocsp_request
from certvigil.probe.options import ProbeOptions
from certvigil.probe.revocation import CrlCache, RevocationOptions, check_revocation
from certvigil.probe.tls import probe_tls
from certvigil.targets.target import Target

# The test-only servers live in tests/support/, beside this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.ocsp_responder import GOOD, OcspResponder, RevocationServer, Revoked, build_crl


def _now() -> datetime:
    return datetime.now(UTC)


def _start_s_server(
    directory: Path, cert: bytes, chain: bytes, key: bytes, staple: bytes
) -> tuple[subprocess.Popen[str], int]:
    for name, data in (("c.pem", cert), ("i.pem", chain), ("k.pem", key), ("s.der", staple)):
        (directory / name).write_bytes(data)
    process = subprocess.Popen(
        ["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", "c.pem", "-key", "k.pem",
         "-cert_chain", "i.pem", "-status_file", "s.der"],
        cwd=directory, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    if process.stdout is None:
        raise SystemExit("openssl s_server has no output pipe")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line.startswith("ACCEPT"):
            return process, int(line.split()[1].rsplit(":", 1)[1])
    process.kill()
    raise SystemExit("openssl s_server did not start")


async def _one_check(
    target: Target, chain: tuple[bytes, ...], root_der: bytes, cache: CrlCache
) -> tuple[float, RevocationStatus | None]:
    started = time.perf_counter()
    handshake = await probe_tls(target, address="127.0.0.1", options=ProbeOptions())
    staple = handshake if isinstance(handshake, ProbeFailure) else handshake.ocsp_staple_der
    async with httpx.AsyncClient() as http:
        obs = await check_revocation(
            chain,
            http=http,
            crl_cache=cache,
            clock=_now,
            options=RevocationOptions(ocsp_for_intermediates=True),
            target=target,
            extra_issuers_der=(root_der,),
            staple_der=staple if isinstance(staple, bytes) else None,
            staple_requested=True,
        )
    report = judge_revocation(obs, now=_now())
    return time.perf_counter() - started, report.leaf_status


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--crl-entries", type=int, default=50_000)
    args = parser.parse_args()

    now = _now()
    pki = ThrowawayPki.create(now_utc=now)
    root_responder = OcspResponder(issuer=pki.root.issued, clock=_now)
    int_responder = OcspResponder(issuer=pki.intermediate.issued, clock=_now)
    with (
        RevocationServer(responder=int_responder) as server,
        RevocationServer(responder=root_responder) as root_server,
        tempfile.TemporaryDirectory() as tmp,
    ):
        intermediate = pki.root.intermediate(
            common_name="Bench Intermediate",
            ocsp_urls=[root_server.url("/ocsp")],
            crl_urls=[root_server.url("/root.crl")],
        )
        int_responder.issuer = intermediate.issued
        int_responder.signer = intermediate.issued
        root_responder.statuses[intermediate.certificate.serial_number] = GOOD
        leaf = intermediate.issue_leaf(
            ocsp_urls=[server.url("/ocsp")], crl_urls=[server.url("/int.crl")]
        )
        int_responder.statuses[leaf.certificate.serial_number] = GOOD
        week = timedelta(days=7)
        server.files["/int.crl"] = build_crl(
            issuer=intermediate.issued, this_update_utc=now, next_update_utc=now + week
        )
        root_server.files["/root.crl"] = build_crl(
            issuer=pki.root.issued, this_update_utc=now, next_update_utc=now + week
        )
        staple = int_responder.respond(
            build_ocsp_request(leaf.certificate, intermediate.certificate)
        )
        process, port = _start_s_server(Path(tmp), leaf.pem, intermediate.pem, leaf.key_pem, staple)
        try:
            target = Target(host="127.0.0.1", port=port, sni="localhost")
            chain = leaf.chain_der(intermediate)
            cold, warm = [], []
            warm_cache = CrlCache(clock=_now)
            for _ in range(args.rounds):
                seconds, status = asyncio.run(
                    _one_check(target, chain, pki.root.der, CrlCache(clock=_now))
                )
                if status is not RevocationStatus.GOOD:
                    raise SystemExit(f"expected a good leaf, got {status}")
                cold.append(seconds)
                seconds, status = asyncio.run(_one_check(target, chain, pki.root.der, warm_cache))
                warm.append(seconds)
        finally:
            process.terminate()
            process.wait(5)
        print(f"one endpoint, staple + CRL x2 + OCSP x2 + judgement, {args.rounds} rounds:")
        print(
            f"  cold CRL cache: median {statistics.median(cold) * 1000:.1f} ms, "
            f"max {max(cold) * 1000:.1f} ms"
        )
        print(
            f"  warm CRL cache: median {statistics.median(warm) * 1000:.1f} ms, "
            f"max {max(warm) * 1000:.1f} ms"
        )

        entries = [
            (serial, Revoked(revoked_at_utc=now - timedelta(days=1)))
            for serial in range(1_000_000, 1_000_000 + args.crl_entries)
        ]
        build_started = time.perf_counter()
        big = build_crl(
            issuer=intermediate.issued, this_update_utc=now, next_update_utc=now + week,
            revoked=entries,
        )  # fmt: skip
        build_s = time.perf_counter() - build_started
        server.files["/int.crl"] = big
        started = time.perf_counter()
        obs = asyncio.run(_crl_only((leaf.der, intermediate.der), pki.root.der))
        report = judge_revocation(obs, now=_now())
        elapsed = time.perf_counter() - started
        print(
            f"CRL with {args.crl_entries} entries ({len(big) / 1e6:.1f} MB, built in "
            f"{build_s:.1f} s): download + verify + lookup {elapsed * 1000:.0f} ms, "
            f"leaf {report.leaf_status}"
        )


async def _crl_only(chain: tuple[bytes, ...], root_der: bytes) -> RevocationObservation:
    async with httpx.AsyncClient() as http:
        return await check_revocation(
            chain,
            http=http,
            crl_cache=CrlCache(clock=_now),
            clock=_now,
            options=RevocationOptions(use_ocsp=False),
            extra_issuers_der=(root_der,),
        )


if __name__ == "__main__":
    main()

"""Benchmark: one full ``scan --deep`` of one endpoint, revocation included, on loopback.

Starts a lab PKI, a loopback OCSP responder and CRL server (``tests/support``), and
``openssl s_server -www`` on 127.0.0.1 (it answers the HSTS ``GET /`` as a web server
does) serving a leaf that names both; then times ``scan`` with
``ScanOptions(deep=True, revocation=True)`` (what ``certvigil scan --deep`` and
``certvigil grade`` run: handshake, analysis, OCSP + CRL + staple, protocol and cipher
probes, grade, Mozilla profiles) a few times and prints each run and the median.
Not a test: it prints figures.

    .venv/bin/python bench/deep_scan_one_endpoint.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from certvigil.analysis.trust import TrustStore
from certvigil.demo.pki import ThrowawayPki
from certvigil.scan.options import ScanOptions
from certvigil.scan.scanner import scan
from certvigil.targets.target import Target

# The test-only servers live in tests/support/, beside this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.ocsp_responder import GOOD, OcspResponder, RevocationServer, build_crl


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    now = datetime.now(UTC)
    pki = ThrowawayPki.create(now_utc=now)
    responder = OcspResponder(issuer=pki.intermediate.issued, clock=lambda: datetime.now(UTC))
    with RevocationServer(responder=responder) as revocation:
        revocation.files["/int.crl"] = build_crl(
            issuer=pki.intermediate.issued,
            this_update_utc=now - timedelta(hours=1),
            next_update_utc=now + timedelta(days=7),
            revoked=(),
        )
        leaf = pki.issue_leaf(
            ocsp_urls=[revocation.url("/ocsp")], crl_urls=[revocation.url("/int.crl")]
        )
        responder.statuses[leaf.certificate.serial_number] = GOOD
        trust = TrustStore.from_certificates([pki.root.certificate], source="lab root")
        options = ScanOptions(deep=True, revocation=True, retries=0)
        with tempfile.TemporaryDirectory() as directory:
            cert, key = leaf.write(Path(directory), "leaf")
            chain = Path(directory) / "intermediate.pem"
            chain.write_bytes(pki.intermediate.issued.pem)
            server = subprocess.Popen(
                ["openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", str(cert),
                 "-key", str(key), "-cert_chain", str(chain), "-www"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True,
            )  # fmt: skip
            assert server.stdout is not None
            port = next(
                int(line.strip().rsplit(":", 1)[1])
                for line in server.stdout
                if line.startswith("ACCEPT")
            )
            target = Target(host="127.0.0.1", port=port, sni="localhost")
            times_s: list[float] = []
            for run in range(1, args.runs + 1):
                started = time.perf_counter()
                report = scan([target], options=options, trust=trust)[0]
                elapsed_s = time.perf_counter() - started
                times_s.append(elapsed_s)
                assert report.deep is not None and report.revocation is not None
                print(
                    f"run {run}: {elapsed_s:.3f} s  grade {report.deep.grade.grade}  "
                    f"leaf {report.revocation.leaf_status}  "
                    f"{report.deep.observation.handshake_count} probe connections"
                )
            server.terminate()
            server.wait()
    print(f"median of {len(times_s)}: {statistics.median(times_s):.3f} s (goal < 2 s)")


if __name__ == "__main__":
    main()

"""Fuzz campaign over revocation answers: mutated CRLs and OCSP responses.

Run from the repository root::

    PYTHONPATH=src:. .venv/bin/python fuzz/revocation_answers.py --inputs 100000 --seed 1

A real CRL (two entries, one with a reason) and a real OCSP response from the test
responder (``tests/support/ocsp_responder.py``) are mutated (bytes set, flipped,
deleted) and given to what reads a downloaded answer: the CRL cache's normaliser, and
``check_crl``, ``check_ocsp_response`` and ``ocsp_response_matches``, which promise never
to raise. Warnings count as crashes. Prints inputs, crashes and distinct crash kinds.
"""

from __future__ import annotations

import argparse
import random
import sys
import traceback
import warnings
from collections import Counter
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from tests.support.ocsp_responder import OcspResponder, Revoked, build_crl

from certvigil.analysis.revocation_checks import (
    check_crl,
    check_ocsp_response,
    ocsp_response_matches,
)
from certvigil.demo.pki import ThrowawayPki
from certvigil.probe.crl_fetch import _normalise_crl


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    now = datetime.now(UTC)
    pki = ThrowawayPki.create(now_utc=now)
    leaf = pki.issue_leaf(crl_urls=("http://127.0.0.1/crl",))
    issuer = pki.intermediate.certificate
    serial = leaf.certificate.serial_number
    crl = build_crl(
        issuer=pki.intermediate.issued,
        this_update_utc=now - timedelta(hours=1),
        next_update_utc=now + timedelta(days=1),
        revoked=[
            (serial, Revoked(revoked_at_utc=now, reason=x509.ReasonFlags.key_compromise)),
            (5, Revoked(revoked_at_utc=now)),
        ],
    )
    responder = OcspResponder(issuer=pki.intermediate.issued, clock=lambda: now)
    responder.statuses[serial] = "good"
    request = ocsp.OCSPRequestBuilder().add_certificate(leaf.certificate, issuer, hashes.SHA1())
    response = responder.respond(request.build().public_bytes(Encoding.DER))
    rng = random.Random(args.seed)
    crashes: Counter[str] = Counter()
    for _ in range(args.inputs):
        data = bytearray(rng.choice((crl, response)))
        for _ in range(rng.randrange(1, 4)):
            at = rng.randrange(len(data))
            kind = rng.randrange(3)
            if kind == 0:
                data[at] = rng.randrange(256)
            elif kind == 1:
                del data[at : at + rng.randrange(1, 8)]
            else:
                data[at] ^= 1 << rng.randrange(8)
        body = bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                _normalise_crl(body)
                check_crl(body, cert=leaf.certificate, issuer=issuer, now=now)
                check_ocsp_response(body, cert=leaf.certificate, issuer=issuer, now=now)
                ocsp_response_matches(body, leaf.certificate, issuer)
            except Exception as exc:  # noqa: BLE001 - counting crashes is the point
                frames = traceback.extract_tb(exc.__traceback__)
                ours = [f for f in frames if "certvigil" in f.filename] or frames
                where = f"{ours[-1].filename.split('src/')[-1]}:{ours[-1].lineno}"
                crashes[f"{type(exc).__name__} at {where}"] += 1
    print(
        f"revocation answers: {args.inputs} inputs (seed {args.seed}), "
        f"{sum(crashes.values())} crashes, {len(crashes)} distinct kinds"
    )
    for kind, number in crashes.most_common():
        print(f"  {number:6d}  {kind}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())

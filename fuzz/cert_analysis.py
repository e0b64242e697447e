"""Fuzz campaign over certificate analysis: what ``certvigil cert FILE`` does, in process.

Run from the repository root (seeds come from tests/data/certs and a throwaway PKI)::

    PYTHONPATH=src .venv/bin/python fuzz/cert_analysis.py --inputs 100000 --seed 1

Each input is random bytes, or one or two seed certificates (DER or PEM) mutated:
bytes flipped, set, inserted, deleted, truncated, a slice copied elsewhere, an
extension OID renamed to another's (which makes duplicate extensions), two seeds
spliced. Each input goes through the whole offline path: file loading
(``load_certificate_bytes``, PEM/DER/PKCS#7), ``analyse_chain_der`` (facts, chain,
hostname, findings), the table and JSON outputs, the AIA body parser, and revocation
planning and judging. ``CertificateLoadError`` (and ``ValueError`` from the AIA parser,
its documented refusal) is the expected refusal; anything else is a crash. The script
prints the number of inputs, crashes and distinct crash kinds (exception type and the
innermost certvigil frame), and with ``--save DIR`` writes the first input of each
kind there. Exit status: 1 when something crashed.
"""

from __future__ import annotations

import argparse
import base64
import io
import random
import sys
import time
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

from certvigil.analysis.report import analyse_chain_der
from certvigil.analysis.trust import TrustStore
from certvigil.errors import CertificateLoadError
from certvigil.files.certificates import load_certificate_bytes
from certvigil.output.files import FileReport, render_files_table, write_files_json
from certvigil.output.summary import Tally

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
# Extension OIDs under 2.5.29 (one content byte after 55 1d): renaming one into another
# keeps lengths and often yields a duplicate.
_EXTENSION_BYTES = bytes([0x0E, 0x0F, 0x11, 0x12, 0x13, 0x14, 0x1E, 0x1F, 0x20, 0x23, 0x25])


def load_seeds() -> tuple[list[bytes], bytes, bytes]:
    """The seed certificates, and the root and intermediate the generated ones chain to.

    Fixed files, so that a seed number names the same inputs on every machine: the real
    certificates under ``tests/data/certs`` and the throwaway ones under
    ``tests/data/fuzz/seeds`` (SANs of every kind, AIA, CRL, must-staple, EV policy,
    RSA, a CA flag; made once with ``certvigil.demo.pki``, valid around ``NOW``).
    """
    seeds: list[bytes] = []
    for path in sorted((ROOT / "tests" / "data" / "certs").rglob("*.pem")):
        try:
            seeds += load_certificate_bytes(path.read_bytes(), source=str(path))
        except CertificateLoadError:
            continue
    generated = ROOT / "tests" / "data" / "fuzz" / "seeds"
    seeds += [p.read_bytes() for p in sorted(generated.glob("*.der"))]
    root = (generated / "root.der").read_bytes()
    intermediate = (generated / "intermediate.der").read_bytes()
    return seeds, root, intermediate


def _loads(der: bytes) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            x509.load_der_x509_certificate(der)
        except ValueError:
            return False
    return True


def trust_for(root: bytes) -> TrustStore:
    """A trust store holding only the seeds' root."""
    return TrustStore.from_certificates([x509.load_der_x509_certificate(root)], source="fuzz")


class Mutator:
    """Makes inputs from the seeds with one random generator."""

    def __init__(self, seeds: list[bytes], rng: random.Random) -> None:
        self.seeds = seeds
        self.rng = rng
        self._loadable = [s for s in seeds if _loads(s)]

    def der(self) -> bytes:
        rng = self.rng
        if rng.random() < 0.03:
            return rng.randbytes(rng.randrange(0, 600))
        data = bytearray(rng.choice(self.seeds))
        for _ in range(rng.randrange(1, 5)):
            self._mutate(data)
        return bytes(data)

    def _mutate(self, data: bytearray) -> None:
        rng = self.rng
        if not data:
            data.extend(rng.randbytes(8))
            return
        kind = rng.randrange(9)
        at = rng.randrange(len(data))
        if kind == 0:
            data[at] ^= 1 << rng.randrange(8)
        elif kind == 1:
            data[at] = rng.choice((0x00, 0x01, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif kind == 2:
            data[at:at] = rng.randbytes(rng.randrange(1, 8))
        elif kind == 3:
            del data[at : at + rng.randrange(1, 16)]
        elif kind == 4:
            del data[rng.randrange(len(data) + 1) :]
        elif kind == 5:
            start = rng.randrange(len(data))
            piece = data[start : start + rng.randrange(1, 64)]
            data[at:at] = piece
        elif kind == 6:
            positions = [i for i in range(len(data) - 4) if data[i : i + 4] == b"\x06\x03\x55\x1d"]
            if positions:
                data[rng.choice(positions) + 4] = rng.choice(_EXTENSION_BYTES)
        elif kind == 7:
            other = rng.choice(self.seeds)
            cut = rng.randrange(len(other))
            data[at:] = other[cut:]
        else:
            # A length byte nudged: the commonest way real DER goes wrong.
            data[at] = (data[at] + rng.choice((-1, 1, 0x80))) & 0xFF

    def pkcs7(self) -> bytes:
        """A PKCS#7 certs-only bundle of one or two seeds, mutated."""
        rng = self.rng
        with warnings.catch_warnings():  # a seed with a zero serial: not the code under test
            warnings.simplefilter("ignore")
            chosen = [x509.load_der_x509_certificate(rng.choice(self._loadable)) for _ in "ab"]
            bundle = pkcs7.serialize_certificates(chosen[: rng.randrange(1, 3)], Encoding.DER)
        data = bytearray(bundle)
        for _ in range(rng.randrange(0, 4)):
            self._mutate(data)
        return bytes(data)

    def file(self) -> bytes:
        """One input file: DER, PKCS#7, or PEM with one or two certificates."""
        rng = self.rng
        if rng.random() < 0.05:
            return self.pkcs7()
        first = self.der()
        if rng.random() < 0.5:
            return first
        blocks = [first] + ([rng.choice(self.seeds)] if rng.random() < 0.5 else [])
        text = b"".join(
            b"-----BEGIN CERTIFICATE-----\n"
            + base64.encodebytes(block)
            + b"-----END CERTIFICATE-----\n"
            for block in blocks
        )
        if rng.random() < 0.1:
            position = rng.randrange(len(text))
            text = text[:position] + rng.randbytes(rng.randrange(1, 4)) + text[position + 1 :]
        return text


def run_one(data: bytes, trust: TrustStore, extra_issuers: tuple[bytes, ...]) -> None:
    """The offline path for one input; raises only on a crash.

    Warnings count as crashes, as in the test suite (``filterwarnings = error``): a
    library warning that reaches stderr is noise no user can act on.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _run_one(data, trust, extra_issuers)


def _run_one(data: bytes, trust: TrustStore, extra_issuers: tuple[bytes, ...]) -> None:
    # Imported here so that the campaign can run against code without the plan module.
    from certvigil.probe.aia import parse_issuer_body

    try:
        parse_issuer_body(data)
    except ValueError:
        pass
    try:
        chain = load_certificate_bytes(data, source="fuzz input")
    except CertificateLoadError:
        return
    analysis = analyse_chain_der(
        chain, now=NOW, trust=trust, expected_name="fuzz.example.test", has_ocsp_staple=False
    )
    report = FileReport(source="fuzz input", analysis=analysis)
    render_files_table([report], io.StringIO())
    tally = Tally()
    tally.add_verdict(analysis.verdict)
    write_files_json(
        [report],
        io.StringIO(),
        tally=tally,
        version="fuzz",
        started_at_utc=NOW,
        finished_at_utc=NOW + timedelta(seconds=1),
    )
    _revocation(chain, extra_issuers)


def _revocation(chain: tuple[bytes, ...], extra_issuers: tuple[bytes, ...]) -> None:
    try:
        from certvigil.analysis.revocation_plan import plan_revocation
    except ImportError:  # older code: plan as check_revocation did, without the network
        _old_revocation(chain, extra_issuers)
        return
    from certvigil.analysis.revocation import judge_revocation
    from certvigil.observed.revocation import (
        CertificateRevocationObservation,
        RevocationObservation,
    )

    plan = plan_revocation(chain, extra_issuers_der=extra_issuers)
    observation = RevocationObservation(
        observed_at_utc=NOW,
        certificates=tuple(
            CertificateRevocationObservation(
                cert_index=c.cert_index,
                certificate_der=c.certificate.der,
                issuer_der=c.issuer.der if c.issuer is not None else None,
            )
            for c in plan
        ),
        staple_requested=True,
    )
    judge_revocation(observation, now=NOW)


def _old_revocation(chain: tuple[bytes, ...], extra_issuers: tuple[bytes, ...]) -> None:
    from cryptography import x509

    import certvigil.probe.revocation as old

    certificates = [x509.load_der_x509_certificate(der) for der in chain]
    candidates = certificates + [x509.load_der_x509_certificate(d) for d in extra_issuers]
    for cert in certificates:
        if not old._is_self_signed(cert):  # type: ignore[attr-defined]
            old._find_issuer(cert, candidates)  # type: ignore[attr-defined]
            old.ocsp_urls_of(cert)  # type: ignore[attr-defined]
            old.crl_urls_of(cert)  # type: ignore[attr-defined]


def crash_kind(exc: BaseException) -> str:
    """Exception type and the innermost frame in certvigil (else the innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "certvigil" in f.filename and "/fuzz/" not in f.filename]
    frame = (ours or frames)[-1] if (ours or frames) else None
    where = "?" if frame is None else f"{_short(frame.filename)}:{frame.lineno} ({frame.name})"
    return f"{type(exc).__name__} at {where}"


def _short(filename: str) -> str:
    marker = "certvigil/"
    return filename[filename.rfind(marker) :] if marker in filename else filename


def campaign(
    inputs: int,
    seed: int,
    *,
    save: Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, Counter[str]]:
    """Run ``inputs`` inputs from ``seed``; the count run and crashes by kind."""
    seeds, root, intermediate = load_seeds()
    trust = trust_for(root)
    extra = (intermediate, root)
    mutator = Mutator(seeds, random.Random(seed))
    crashes: Counter[str] = Counter()
    for number in range(inputs):
        data = mutator.file()
        try:
            run_one(data, trust, extra)
        except Exception as exc:  # noqa: BLE001 - counting crashes is the point
            kind = crash_kind(exc)
            if save is not None and kind not in crashes:
                save.mkdir(parents=True, exist_ok=True)
                (save / f"crash-{len(crashes) + 1}.bin").write_bytes(data)
            crashes[kind] += 1
        if progress is not None and number and number % 10000 == 0:
            progress(number)
    return inputs, crashes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--save", type=Path, help="write the first input of each crash kind")
    args = parser.parse_args()
    started = time.monotonic()
    count, crashes = campaign(
        args.inputs,
        args.seed,
        save=args.save,
        progress=lambda n: print(f"  {n} inputs...", file=sys.stderr, flush=True),
    )
    elapsed = time.monotonic() - started
    print(
        f"certificate analysis: {count} inputs (seed {args.seed}), "
        f"{sum(crashes.values())} crashes, {len(crashes)} distinct kinds, {elapsed:.0f} s"
    )
    for kind, number in crashes.most_common():
        print(f"  {number:6d}  {kind}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())

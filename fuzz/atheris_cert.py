"""Coverage-guided fuzzing of certificate analysis and the TLS record codec with atheris.

On demand only (not in CI): ``pip install 'certvigil[fuzz]'`` (atheris, which needs a
Linux x86-64 wheel or clang to build), then from the repository root::

    PYTHONPATH=src .venv/bin/python fuzz/atheris_cert.py -max_total_time=300 CORPUS_DIR
    PYTHONPATH=src .venv/bin/python fuzz/atheris_cert.py --records -max_total_time=300

The first runs each input through the same offline path as ``fuzz/cert_analysis.py``
(file loading, analysis, table and JSON output, AIA body parser, revocation planning
and judging); ``--records`` runs it through the record parsers as
``fuzz/tls_records.py`` does. Seeds: the certificates under ``tests/data/certs`` and the
crash corpus ``tests/data/fuzz/certificates`` are copied into CORPUS_DIR (created when
missing) on the first run. Options after the script's own go to libFuzzer
(``-runs=N``, ``-max_total_time=S``, ``-max_len=N``). A crash stops the run with the
input written to ``crash-<sha1>`` in the current directory.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from certvigil.tls.records import (
        heartbeat_answered,
        parse_server_reply,
        parse_sslv2_reply,
        server_flight_done,
    )
    from fuzz.cert_analysis import load_seeds, run_one, trust_for

ROOT = Path(__file__).resolve().parent.parent


def _cert_target() -> tuple[object, list[str]]:
    seeds, root, intermediate = load_seeds()
    trust = trust_for(root)
    extra = (intermediate, root)

    def target(data: bytes) -> None:
        run_one(data, trust, extra)

    return target, [s.hex() for s in seeds]


def _records_target(data: bytes) -> None:
    parse_server_reply(data, want_key_exchange=False)
    parse_server_reply(data, want_key_exchange=True)
    parse_sslv2_reply(data)
    server_flight_done(data)
    heartbeat_answered(data)


def _seed_corpus(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        return
    sources = [
        *(ROOT / "tests" / "data" / "certs").rglob("*.pem"),
        *(ROOT / "tests" / "data" / "fuzz" / "certificates").iterdir(),
    ]
    for number, path in enumerate(sorted(sources)):
        shutil.copy(path, directory / f"seed-{number:03d}")


def main() -> None:
    args = sys.argv[1:]
    records = "--records" in args
    args = [a for a in args if a != "--records"]
    corpora = [a for a in args if not a.startswith("-")]
    if not records:
        for corpus in corpora:
            _seed_corpus(Path(corpus))
        target, _ = _cert_target()
    else:
        target = _records_target
    atheris.Setup([sys.argv[0], *args], target)  # type: ignore[arg-type]
    atheris.Fuzz()


if __name__ == "__main__":
    main()

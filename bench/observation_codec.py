"""Observation codec benchmark: microseconds per observation to encode and to read.

Two samples: the store benchmark's full observations (``bench/store_ingest.py``
``_sample_reports(..., full=True)``: served chain of two, staple, OCSP and CRL, the
protocol probes for one in 24; the CRL goes to a shared map, as the store writes it)
and the server benchmark's items (``bench/server_api.py observation_items``: a
handshake with a real served chain, as agents send them, CRL-free).

For each: encoding, old (the generic encoder as it was, kept as
``tests/observed/reference_encoder.py``) and new (``observation_to_dict``); reading a
parsed document, old (the careful reader) and new (``observation_from_dict``: the fast
reader, the careful one only for what it declines); reading JSON text, old
(``json.loads`` and the careful reader) and new (``observation_from_json``: orjson and
the fast reader). Each result is dropped as soon as it is made. CPU time of this
process (``time.process_time``), best of ``--repeat`` passes over the sample, divided by
the sample's size.

    .venv/bin/python bench/observation_codec.py               # 1,500 observations each
    .venv/bin/python bench/observation_codec.py --count 200   # quick
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server_api import observation_items
from store_ingest import _sample_reports
from tests.observed.reference_encoder import reference_observation_to_dict

from certvigil.demo.pki import ThrowawayPki
from certvigil.observed.codec import (
    _read_carefully,
    observation_from_dict,
    observation_from_json,
    observation_to_dict,
    observation_to_json,
)
from certvigil.observed.endpoint import EndpointObservation


def _each(items: Sequence[Any], call: Callable[[Any], object]) -> None:
    """``call`` on each item, its result dropped at once: the store encodes, packs and
    drops each document, and keeping 1,500 results alive would measure the allocator's
    fresh pages rather than the codec."""
    for item in items:
        call(item)


def _us_per_item(run: Callable[[], object], count: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best / count * 1e6


def measure(
    name: str,
    observations: Sequence[EndpointObservation],
    crls: dict[str, bytes] | None,
    repeat: int,
) -> list[tuple[str, str, float, float]]:
    """Rows of (sample, step, old us, new us)."""
    count = len(observations)
    shared = crls
    documents = [json.loads(observation_to_json(o, crls=shared)) for o in observations]
    texts = [observation_to_json(o, crls=shared) for o in observations]
    # Both sides must read back what was written, or the figures compare nothing.
    for observation, document, text in zip(observations, documents, texts, strict=True):
        assert observation_from_dict(document, crls=shared) == observation
        assert _read_carefully(document, shared) == observation
        assert observation_from_json(text, crls=shared) == observation
    rows = [
        (
            "encode (to_dict)",
            lambda: _each(observations, lambda o: reference_observation_to_dict(o, crls=shared)),
            lambda: _each(observations, lambda o: observation_to_dict(o, crls=shared)),
        ),
        (
            "read a parsed document",
            lambda: _each(documents, lambda d: _read_carefully(d, shared)),
            lambda: _each(documents, lambda d: observation_from_dict(d, crls=shared)),
        ),
        (
            "read JSON text",
            lambda: _each(texts, lambda t: _read_carefully(json.loads(t), shared)),
            lambda: _each(texts, lambda t: observation_from_json(t, crls=shared)),
        ),
    ]
    out = []
    for step, old, new in rows:
        out.append((name, step, _us_per_item(old, count, repeat), _us_per_item(new, count, repeat)))
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1500, help="observations per sample")
    parser.add_argument("--repeat", type=int, default=5, help="passes; the best is kept")
    args = parser.parse_args(argv)

    start = datetime(2026, 1, 1, tzinfo=UTC)
    store_sample: list[EndpointObservation] = []
    for report in _sample_reports(args.count, max(1, args.count // 10), start=start, full=True):
        assert report.observed is not None
        store_sample.append(report.observed)
    pki = ThrowawayPki.create()
    server_sample: list[EndpointObservation] = []
    for item in observation_items(pki, args.count, offset=0):
        document: dict[str, Any] = {k: v for k, v in item.items() if k != "tags"}
        server_sample.append(observation_from_dict(document))
    size = len(observation_to_json(store_sample[0], crls={}))

    rows = measure("store (full)", store_sample, {}, args.repeat)
    rows += measure("server items", server_sample, None, args.repeat)
    print(f"{args.count} observations per sample; store document {size:,} bytes of JSON")
    print(f"{'sample':<14} {'step':<24} {'old us/obs':>10} {'new us/obs':>10} {'x':>6}")
    for name, step, old, new in rows:
        print(f"{name:<14} {step:<24} {old:>10.1f} {new:>10.1f} {old / new:>6.1f}")
    print("CPU time of this process; on a shared machine the figures are indicative.")


if __name__ == "__main__":
    main()

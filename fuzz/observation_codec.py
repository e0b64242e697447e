"""Fuzz campaign over observation documents: the fast reader against the careful one.

Run from the repository root::

    PYTHONPATH=src:. .venv/bin/python fuzz/observation_codec.py --inputs 100000 --seed 1

Real documents (every kind of field, a failed handshake, CRLs inline and in a shared
map) get one to four damages each: a field dropped, one added, a value replaced by a
hostile one (``tests/observed/test_fast_codec.py HOSTILE``: wrong types, bool for int,
integers beyond 64 bits, NaN, bad base64, naive times, wrong tags); one input in four
is then written as JSON text and a character of it changed, inserted or deleted. Each
is read by the fast reader, the careful reader and the public functions. Counted:
disagreements (the fast reader returned something the careful reader does not return,
or the public reader's outcome differs from the careful reader's), crashes (anything
but ObservationFormatError from the public functions) and how often the fast reader
declined.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import traceback
from collections import Counter
from typing import Any

from tests.observed.test_codec import observation_with_crl
from tests.observed.test_fast_codec import (
    FAILED,
    FULL,
    HOSTILE,
    _damage,
    _fast_outcome,
    _outcome,
    _places,
)

from certvigil.observed.codec import (
    _read_carefully,
    observation_from_dict,
    observation_from_json,
    observation_to_dict,
    observation_to_json,
)

_TEXT_NOISE = '0123456789.eE+-[]{}",: \\tfnulrsaNI\udc80é'


def _documents() -> list[tuple[str, dict[str, bytes] | None]]:
    """Seed documents as JSON text, with the CRL map each needs."""
    seeds: list[tuple[str, dict[str, bytes] | None]] = []
    for observation in (FULL, FAILED, observation_with_crl()):
        seeds.append((observation_to_json(observation), None))
        shared: dict[str, bytes] = {}
        seeds.append((json.dumps(observation_to_dict(observation, crls=shared)), shared))
    return seeds


def _crash_kind(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "certvigil" in f.filename]
    where = f"{frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__} at {where}"


def _one(rng: random.Random, seed: tuple[str, dict[str, bytes] | None]) -> tuple[str, Any]:
    """One input: ("agree" | "declined" | "disagree" | "crash", detail)."""
    text, crls = seed
    document = json.loads(text)
    for _ in range(rng.randint(1, 4)):
        if not _places(document):  # everything dropped already
            break
        how = rng.choice(["drop", "add", "replace"])
        document = _damage(document, rng.randrange(10_000), how, rng.choice(HOSTILE))
    try:
        if rng.random() < 0.25:
            raw = list(json.dumps(document))
            at = rng.randrange(len(raw))
            change = rng.choice(["set", "insert", "delete"])
            if change == "delete":
                del raw[at]
            elif change == "insert":
                raw.insert(at, rng.choice(_TEXT_NOISE))
            else:
                raw[at] = rng.choice(_TEXT_NOISE)
            mutated = "".join(raw)
            try:
                parsed = json.loads(mutated)
            except (ValueError, RecursionError):
                parsed = None
            public = _outcome(lambda: observation_from_json(mutated, crls=crls))
            if parsed is None:
                return ("agree" if public[0] == "refused" else "disagree", mutated)
            careful = _outcome(_read_carefully, parsed, crls)
            return ("agree" if public == careful else "disagree", mutated)
        careful = _outcome(_read_carefully, document, crls)
        fast = _fast_outcome(document, crls)
        public = _outcome(lambda: observation_from_dict(document, crls=crls))
        if public != careful or (fast is not None and fast != careful):
            return ("disagree", document)
        return ("declined" if fast is None else "agree", None)
    except Exception as exc:  # noqa: BLE001 - the campaign counts what escapes
        return ("crash", _crash_kind(exc))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    seeds = _documents()
    counts: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    first_disagreement: Any = None
    for _ in range(args.inputs):
        result, detail = _one(rng, rng.choice(seeds))
        counts[result] += 1
        if result == "crash":
            kinds[detail] += 1
        elif result == "disagree" and first_disagreement is None:
            first_disagreement = detail
    print(f"inputs {args.inputs}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for kind, count in kinds.most_common():
        print(f"  crash {count}: {kind}")
    if first_disagreement is not None:
        print(f"first disagreement: {str(first_disagreement)[:400]}")
    return 1 if counts["crash"] or counts["disagree"] else 0


if __name__ == "__main__":
    sys.exit(main())

"""Fuzz campaign over the CT side inputs: certstream messages, crt.sh answers, CAA values.

Run from the repository root::

    PYTHONPATH=src:. .venv/bin/python fuzz/ct_feed_answers.py --inputs 100000 --seed 1

Seeds are the real recorded inputs (the three certstream messages in
``tests/data/certstream``, the two crt.sh answers in ``tests/data/crtsh``). Each input is
a seed mutated at the byte level (bytes set, flipped, deleted, a slice duplicated) or at
the JSON level (a value replaced by another JSON type, a key dropped, a string
lengthened), then given to ``parse_certstream_message`` and ``parse_crtsh_answer``, and
every name that comes out to the look-alike index, the keyword rules and a feed
message round trip. The only allowed refusal is the parser's own error
(``CertstreamMessageError``, ``ResponseError``); any other exception or warning is a
crash. Prints inputs, crashes and distinct crash kinds (type and innermost frame).

With ``--atheris`` (and atheris installed) the same target runs coverage-guided; libFuzzer
options pass through (``--atheris -runs=200000``).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import traceback
import warnings
from collections import Counter
from pathlib import Path

from certvigil.ct.certstream import (
    CertstreamMessageError,
    CertstreamUpdate,
    parse_certstream_message,
)
from certvigil.ct.crtsh import parse_crtsh_answer
from certvigil.ct.errors import ResponseError
from certvigil.ct.keywords import KeywordRules
from certvigil.ct.lookalike import LookalikeIndex

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SEEDS = [p.read_bytes() for p in sorted((DATA / "certstream").glob("*.json"))] + [
    p.read_bytes() for p in sorted((DATA / "crtsh").glob("*.json"))
]
INDEX = LookalikeIndex.build(["github.com", "example.com", "k-k.de"])
RULES = KeywordRules(["github", "login", "secure", "shop"], threshold=2, blacklist=["github.com"])
_VALUES: list[object] = [None, True, -1, 0, 2**70, 1e308, "", "x" * 5000, [], {}, ["a"], "*.a"]


def _mutate_json(rng: random.Random, node: object, depth: int = 0) -> object:
    if isinstance(node, dict) and node:
        key = rng.choice(list(node))
        choice = rng.randrange(3)
        if choice == 0:
            node = {k: v for k, v in node.items() if k != key}
        elif choice == 1:
            node = {**node, key: rng.choice(_VALUES)}
        else:
            node = {**node, key: _mutate_json(rng, node[key], depth + 1)}
    elif isinstance(node, list) and node:
        at = rng.randrange(len(node))
        node = [*node[:at], _mutate_json(rng, node[at], depth + 1), *node[at + 1 :]]
    elif isinstance(node, str):
        node = rng.choice((node * 3, node[: len(node) // 2], node + "\u202e\x1b", "xn--" + node))
    return node


def _mutate(rng: random.Random, seed: bytes) -> bytes:
    if rng.random() < 0.5:
        return json.dumps(_mutate_json(rng, json.loads(seed))).encode()
    data = bytearray(seed)
    for _ in range(rng.randrange(1, 5)):
        if not data:
            break
        at = rng.randrange(len(data))
        kind = rng.randrange(4)
        if kind == 0:
            data[at] = rng.randrange(256)
        elif kind == 1:
            del data[at : at + rng.randrange(1, 8)]
        elif kind == 2:
            data[at] ^= 1 << rng.randrange(8)
        else:
            data[at:at] = data[at : at + rng.randrange(1, 40)]
    return bytes(data)


def target(body: bytes) -> None:
    """One input through every reader; raises only on a crash."""
    names: list[str] = []
    try:
        message = parse_certstream_message(body)
    except CertstreamMessageError:
        pass
    else:
        if isinstance(message, CertstreamUpdate):
            names += message.names.dns_names
    try:
        answer = parse_crtsh_answer(body)
    except ResponseError:
        pass
    else:
        for certificate in answer.certificates:
            names += certificate.dns_names
    for name in names:
        INDEX.match(name)
        RULES.check(name)
        RULES.explain(name)


def _kind(exc: BaseException) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "certvigil" in f.filename]
    where = f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"
    return f"{type(exc).__name__} at {where}"


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--atheris", action="store_true", help="coverage-guided, until stopped")
    args, libfuzzer_args = parser.parse_known_args()
    if args.atheris:
        import atheris  # type: ignore[import-not-found]

        def one(data: bytes) -> None:
            try:
                target(bytes(data))
            except (CertstreamMessageError, ResponseError):  # pragma: no cover - caught inside
                pass

        # The parsers were imported before atheris: instrument what is loaded now.
        atheris.instrument_all()
        atheris.Setup([sys.argv[0], *libfuzzer_args], one)
        atheris.Fuzz()
        return 0
    rng = random.Random(args.seed)
    crashes: Counter[str] = Counter()
    for _ in range(args.inputs):
        body = _mutate(rng, rng.choice(SEEDS))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                target(body)
            except Exception as exc:  # noqa: BLE001 - a fuzzer counts every crash
                crashes[_kind(exc)] += 1
    print(f"inputs {args.inputs}  crashes {sum(crashes.values())}  kinds {len(crashes)}")
    for kind, count in crashes.most_common():
        print(f"  {count:6}  {kind}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())

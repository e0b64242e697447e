"""Fuzz campaign over target parsing: target files as ``scan -f`` reads them.

Each input is a small target file made from valid specs (names, IDNs, addresses,
blocks, ports, brackets), mutated with separators, white space, comments, control and
bidi characters and random code points. Every input goes through ``iter_file_specs``
and ``iter_targets`` as the scan command uses them, and the properties are checked:

* nothing raises: a malformed target reaches the ``on_error`` callback as a
  ``TargetError`` that names the file and its line;
* a line holds one target: no line yields targets *and* an error, and a line with
  white space inside its target yields no target (nothing on it is looked up);
* every target yielded is an IP address or a normalised DNS name with a port in range.

Outcomes per input: ``clean`` (targets only), ``errors`` (at least one reported
mistake) and ``crash`` (a property broken or an exception). A run prints the counts and
each distinct crash kind with one reproducing input.

    PYTHONPATH=src .venv/bin/python fuzz/target_parsing.py --inputs 100000 --seed 1
"""

from __future__ import annotations

import argparse
import io
import itertools
import random
import time
import traceback
from collections import Counter
from pathlib import Path

from certvigil.errors import TargetError
from certvigil.targets.ipaddr import ip_or_none
from certvigil.targets.parse import (
    ExpansionOptions,
    iter_file_specs,
    iter_targets,
    normalise_hostname,
)

VALID = [
    "example.org",
    "www.example.org:8443",
    "example.org:443,8443",
    "bücher.example",
    "xn--bcher-kva.example",
    "192.0.2.10",
    "192.0.2.10:25",
    "2001:db8::1",
    "[2001:db8::1]:8443",
    "10.1.2.0/30",
    "10.1.2.0/30:443",
    "[2001:db8::/126]:443",
    "_srv.internal",
    "a-b.c-d.example",
    "localhost",
    "exa",
    "mple.com",
]
FRAGMENTS = [
    " ",
    "\t",
    "  ",
    "#",
    "# comment",
    ",",
    ":",
    "::",
    "[",
    "]",
    "/",
    "/8",
    "/33",
    ":0",
    ":65536",
    ":99999",
    ":-1",
    "..",
    ".",
    "-",
    "_",
    "*",
    "://",
    "http://",
    "\x00",
    "\x1b",
    "\u202e",
    "\u200b",
    "\uff0e",
    "\u3002",
    "\ufeff",
    "\r",
    "\x0b",
    "\x0c",
    "\u3000",
    "é",
    "ß",
    "\U0001d518",
    "0x7f000001",
    "127.1",
    "999.1.1.1",
    "a" * 64,
    "a." * 130,
]

OPTIONS = ExpansionOptions()
MAX_TARGETS_PER_INPUT = 300


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.choice((0, 0, 0, 1, 1, 2, 3))):
        pos = rng.randrange(len(text) + 1)
        roll = rng.random()
        if roll < 0.6:
            text = text[:pos] + rng.choice(FRAGMENTS) + text[pos:]
        elif roll < 0.8 and text:
            text = text[:pos] + text[pos + 1 :]
        else:
            text = text[:pos] + chr(rng.randrange(0, 0x11000)) + text[pos:]
    return text


def make_input(rng: random.Random) -> str:
    """One target file's text, one to six lines."""
    lines = []
    for _ in range(rng.randint(1, 4)):
        line = _mutate(rng, rng.choice(VALID))
        if rng.random() < 0.15:
            line = line + " " + rng.choice(VALID)
        if rng.random() < 0.1:
            line = rng.choice(["", "# only a comment", "   "])
        lines.append(line)
    return "\n".join(lines) + rng.choice(["", "\n", "\r\n"])


def _check_target_host(host: str) -> None:
    if ip_or_none(host) is not None:
        return
    assert normalise_hostname(host) == host, f"host {host!r} is not normalised"


def run_one(text: str) -> str:
    """``clean``, ``errors``, or a crash kind (exception or broken property, and place)."""
    errors: list[TargetError] = []
    try:
        specs = list(iter_file_specs(io.StringIO(text), source="t.txt"))
        assert len({spec.position for spec in specs}) == len(specs), "two targets on one line"
        for spec in specs:
            # Each spec on its own, so that a long port range cannot hide a later line.
            before = len(errors)
            targets = list(
                itertools.islice(
                    iter_targets([spec], options=OPTIONS, on_error=errors.append),
                    MAX_TARGETS_PER_INPUT,
                )
            )
            for target in targets:
                _check_target_host(target.host)
                assert 1 <= target.port <= 65535, "port"
            if any(ch.isspace() for ch in spec.text):
                assert len(errors) > before and not targets, "white space accepted"
        for error in errors:
            assert error.source == "t.txt", "source"
            assert error.position >= 0 and str(error).startswith("t.txt"), "position"
    except Exception as exc:  # noqa: BLE001 - the point is to find them
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        where = f"{Path(frame.filename).name}:{frame.lineno}"
        detail = f" ({exc})" if isinstance(exc, AssertionError) else ""
        return f"{type(exc).__name__}{detail} at {where}"
    return "errors" if errors else "clean"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    outcomes: Counter[str] = Counter()
    crashes: Counter[str] = Counter()
    examples: dict[str, str] = {}
    started = time.perf_counter()
    for _ in range(args.inputs):
        text = make_input(rng)
        kind = run_one(text)
        if kind in ("clean", "errors"):
            outcomes[kind] += 1
        else:
            crashes[kind] += 1
            examples.setdefault(kind, text)
    elapsed = time.perf_counter() - started
    print(f"target parsing: {args.inputs} inputs, seed {args.seed}, {elapsed:.1f} s")
    print(f"clean: {outcomes['clean']}, with reported mistakes: {outcomes['errors']}")
    print(f"crashes: {sum(crashes.values())}, distinct kinds: {len(crashes)}")
    for kind, count in crashes.most_common():
        print(f"  {count:6d}  {kind}  e.g. {examples[kind][:120]!r}")


if __name__ == "__main__":
    main()

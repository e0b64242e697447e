"""CT benchmark: look-alike and keyword matching on real entries, next to parse + watch match.

The entries are Navigli2025h2's four real data tiles (1,024 Let's Encrypt staging
precerts) in ``tests/data/ct``, repeated until ``--entries`` (default 100,000) have gone
through. Three passes over the same entries, on one core:

* **base**: ``parse_data_tile`` + names from the TBS + the watch-list match (what
  ``bench/ct_parse_match.py`` measures);
* **+ look-alikes**: the same, plus ``LookalikeIndex.match`` on every name;
* **+ keywords**: the same, plus ``KeywordRules.matches`` on every name.

The three run interleaved, tile by tile, so that they share the machine's load.

The watch list and the look-alike index hold 1,000 domains: 40 registrable domains that
occur in the data and 960 random ones; the index holds their permutations (about
300,000) and skeletons. To make look-alike hits happen, one in a hundred watched domains
are *permutations* of names in the data (so those names look like them). The keyword
rules are CertStreamMonitor's example (paypal, apple, account, secure, login; threshold
2) plus ``staging`` and ``test``. Printed: entries/s (CPU time), hits, the time and memory
the index took to build. Goal: the whole stays at or above 20,000 entries/s.

    PYTHONPATH=src .venv/bin/python bench/ct_names_match.py
    PYTHONPATH=src .venv/bin/python bench/ct_names_match.py --entries 20000 --domains 200
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import time
from collections.abc import Callable
from pathlib import Path

from certvigil.ct.entry import LogEntry
from certvigil.ct.keywords import KeywordRules
from certvigil.ct.lookalike import LookalikeIndex, registrable
from certvigil.ct.match import WatchList
from certvigil.ct.names import entry_names
from certvigil.ct.static_ct import data_tile, parse_data_tile

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "ct"
NAVIGLI = DATA / "static-ct" / "navigli2025h2"


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _watched(tiles: list[bytes], count: int) -> list[str]:
    registrables: dict[str, None] = {}
    for index, raw in enumerate(tiles):
        for entry in parse_data_tile(raw, data_tile(index)).entries:
            for name in entry_names(entry).dns_names:
                domain = registrable(name).domain
                if domain:
                    registrables[domain] = None
    rng = random.Random(11)
    real = rng.sample(sorted(registrables), min(40, len(registrables)))
    # Swap two letters of some real registrable domains: the data's names then look
    # like these watched domains (transposition), so look-alike hits are counted.
    swapped = []
    for domain in rng.sample(sorted(set(registrables) - set(real)), max(1, count // 100)):
        label, _, suffix = domain.partition(".")
        if len(label) > 3:
            swapped.append(label[1] + label[0] + label[2:] + "." + suffix)
    letters = "abcdefghijklmnopqrstuvwxyz"
    others = sorted(
        {
            "".join(rng.choice(letters) for _ in range(rng.randint(5, 12)))
            + rng.choice((".com", ".net", ".org", ".de", ".co.uk"))
            for _ in range(count * 2)
        }
    )
    return (real + swapped + others)[:count]


def _run(total: int, tiles: list[bytes], variants: dict[str, Callable[[str], bool]]) -> None:
    """Each variant over the same entries, interleaved tile by tile, CPU time per variant.

    Interleaving puts every variant under the same machine load, so their ratio holds
    even where the absolute rates move with the load.
    """
    cpu = dict.fromkeys(variants, 0.0)
    hits = dict.fromkeys(variants, 0)
    done = 0
    while done < total:
        for index, raw in enumerate(tiles):
            for label, per_name in variants.items():
                start = time.process_time()
                count = 0
                for entry in parse_data_tile(raw, data_tile(index)).entries:
                    assert isinstance(entry, LogEntry)
                    for name in entry_names(entry).dns_names:
                        if per_name(name):
                            hits[label] += 1
                    count += 1
                cpu[label] += time.process_time() - start
            done += count
    base = done / cpu[next(iter(variants))]
    for label in variants:
        rate = done / cpu[label]
        print(
            f"{label:16} {done:>9,} entries  {rate:>9,.0f} entries/s (CPU)  "
            f"{rate / base:6.0%} of base  {(1 / rate - 1 / base) * 1e6:5.1f} us/entry more  "
            f"hits {hits[label]:,}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--domains", type=int, default=1000)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    tiles = [(NAVIGLI / data_tile(i).path).read_bytes() for i in range(4)]
    domains = _watched(tiles, args.domains)
    watch = WatchList(domains)
    rss_before = _rss_mib()
    started = time.perf_counter()
    index = LookalikeIndex.build(domains)
    built = time.perf_counter() - started
    print(
        f"look-alike index: {len(index.imitated):,} domains, {len(index):,} permutations, "
        f"built in {built:.1f} s, {_rss_mib() - rss_before:.0f} MiB"
    )
    rules = KeywordRules(
        ["paypal", "apple", "account", "secure", "login", "staging", "test"], threshold=2
    )

    def base(name: str) -> bool:
        return bool(watch.watched_for(name))

    # Every matcher runs on every name (no short cut), so the cost of each is counted.
    def lookalikes(name: str) -> bool:
        watched = bool(watch.watched_for(name))
        return (index.match(name) is not None) or watched

    def keywords(name: str) -> bool:
        watched = bool(watch.watched_for(name))
        lookalike = index.match(name) is not None
        return rules.matches(name) or lookalike or watched

    _run(args.entries, tiles, {"base": base, "+ look-alikes": lookalikes, "+ keywords": keywords})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.1f} MiB")


if __name__ == "__main__":
    main()

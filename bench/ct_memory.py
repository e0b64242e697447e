"""CT benchmark: resident memory over millions of entries through the watch's per-entry path.

Every entry goes where ``certvigil ct watch`` sends it (``CtWatch._match``): the RFC
6962 ``get-entries`` parse with lazy ``extra_data``, names from the TBS, the watch list
(1,000 domains), the look-alike index (their dnstwist permutations and skeletons) and
the keyword rules; a matching entry has its chain decoded and its facts computed
(issuer, validity, dedup keys), as the watch does before its batch commit. Dedup itself
lives in the store (an indexed lookup per *matched* entry), so no in-memory set grows
with the entries read; what could grow here are the parsers' and matchers' caches (IDNA
labels, look-alike folds, issuer names), and this run shows that they do not.

The entries are the recorded real ones in ``tests/data/ct`` (Navigli2025h2's 1,024
precerts, Argon2027h1's five and Pilot's four entries), served as ``get-entries``
answers of 256 with indexes running from 0 to ``--entries``; each copy has **its own
names**: the first characters of every DNS name (in the SAN and the CN alike, same
length, so the DER stays valid) are replaced by the running index in base 36, so the
caches see a stream of names they have never seen, as on the real firehose.

Prints the resident set size every ``--every`` entries (the curve) and the rate.

    .venv/bin/python bench/ct_memory.py                      # 10,000,000 entries
    .venv/bin/python bench/ct_memory.py --entries 200000 --every 20000
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from ct_parse_match import _get_entries_answers, _tiles, _watch_domains

from certvigil.ct.errors import MalformedEntryError
from certvigil.ct.judge import certificate_facts
from certvigil.ct.keywords import KeywordRules
from certvigil.ct.lookalike import LookalikeIndex
from certvigil.ct.match import WatchList
from certvigil.ct.names import entry_issuer, names_from_tbs, parse_entry_tbs
from certvigil.ct.rfc6962 import complete_entry, parse_get_entries

_DIGITS = b"0123456789abcdefghijklmnopqrstuvwxyz"


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Template:
    """One recorded entry, with where its DNS names' first labels sit in leaf_input."""

    def __init__(self, leaf: bytes, extra_b64: str, labels: list[tuple[int, int]]) -> None:
        self.leaf = leaf
        self.extra_b64 = extra_b64
        self.labels = labels  # (offset, length) of each name's first label, every copy

    def item(self, serial: int) -> dict[str, str]:
        raw = bytearray(self.leaf)
        for offset, length in self.labels:
            value, width = serial, min(length, 8)
            for i in range(width):
                value, digit = divmod(value, 36)
                raw[offset + width - 1 - i] = _DIGITS[digit]
        return {"leaf_input": base64.b64encode(bytes(raw)).decode(), "extra_data": self.extra_b64}


def _templates() -> list[_Template]:
    templates = []
    for body, start in _get_entries_answers(_tiles()):
        batch = parse_get_entries(body, start, start + 255)
        items = json.loads(body)["entries"]
        for entry, item in zip(batch.entries, items, strict=True):
            leaf = base64.b64decode(item["leaf_input"])
            tbs, fields = parse_entry_tbs(entry)
            labels: list[tuple[int, int]] = []
            for name in names_from_tbs(tbs, fields).dns_names:
                first = name.removeprefix("*.").split(".")[0].encode()
                if not first.isalnum():
                    continue
                at = leaf.find(first)
                while at >= 0:
                    labels.append((at, len(first)))
                    at = leaf.find(first, at + 1)
            templates.append(_Template(leaf, item["extra_data"], labels))
    return templates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000_000)
    parser.add_argument("--every", type=int, default=500_000, help="RSS sample interval")
    parser.add_argument("--real-domains", type=int, default=2)
    args = parser.parse_args()
    tiles = _tiles()
    domains = _watch_domains(tiles, args.real_domains)
    watch = WatchList(domains)
    lookalikes = LookalikeIndex.build(domains)
    keywords = KeywordRules(["login", "secure", "examplebank"], threshold=2, blacklist=[])
    templates = _templates()
    print(
        f"watch list: {len(watch)} domains, {len(lookalikes):,} look-alikes; "
        f"{len(templates)} recorded entries, each copy with new names"
    )
    matched = malformed = done = 0
    start_cpu = time.process_time()
    start_wall = time.perf_counter()
    next_sample = 0
    print(f"{'entries':>12} {'RSS MiB':>8} {'entries/s (CPU)':>16}")
    while done < args.entries:
        count = min(256, args.entries - done)
        items = [templates[(done + i) % len(templates)].item(done + i) for i in range(count)]
        body = json.dumps({"entries": items}).encode()
        batch = parse_get_entries(body, done, done + count - 1, lazy_extra=True)
        malformed += len(batch.malformed)
        for entry in batch.entries:
            try:
                tbs, fields = parse_entry_tbs(entry)
                names = names_from_tbs(tbs, fields).dns_names
            except MalformedEntryError:
                malformed += 1
                continue
            hit = bool(watch.match(names))
            if not hit:
                hit = bool(lookalikes.match_all(names)) or any(keywords.matches(n) for n in names)
            if hit:
                matched += 1
                full = complete_entry(entry)
                certificate_facts(
                    full, tbs, fields, names_from_tbs(tbs, fields), entry_issuer(full)
                )
        done += count
        if done >= next_sample:
            cpu = time.process_time() - start_cpu
            print(f"{done:>12,} {_rss_mib():>8.1f} {done / max(cpu, 1e-9):>16,.0f}", flush=True)
            next_sample += args.every
    wall = time.perf_counter() - start_wall
    print(
        f"done: {done:,} entries in {wall:,.0f} s wall, matched {matched:,}, "
        f"malformed {malformed}; rate includes building each answer (new names, base64, JSON)"
    )


if __name__ == "__main__":
    main()

"""CT benchmark: parse + match throughput on real log entries, with 1,000 watched domains.

The entries are the real ones in ``tests/data/ct``: Navigli2025h2's four data tiles
(1,024 Let's Encrypt staging precerts), Argon2027h1's five and Pilot's four RFC 6962
entries. They are repeated until at least ``--entries`` (default 200,000) have gone
through, along two paths:

* **static**: ``parse_data_tile`` on each 256-entry tile (TileLeaf framing, leaf hash),
  then names from the TBS and the watch-list match for every entry;
* **rfc6962**: ``parse_get_entries`` on ``get-entries`` JSON answers of 256 entries (JSON,
  base64, MerkleTreeLeaf, extra_data chains, leaf hash), built from the same tiles the
  way a log serves them (``leaf_input = 00 00 ‖ TimestampedEntry``, ``extra_data`` =
  pre_certificate + the issuer certificates), then names and match;
* **lazy**: the same answers with ``lazy_extra=True``: ``extra_data`` stays in base64
  and is decoded (``complete_entry``) only for the entries whose names match, as
  ``certvigil ct watch`` reads RFC 6962 logs.

The watch list holds 1,000 domains: 40 registrable domains that occur in the data (so
matches happen and are counted) and 960 others. One core (the process is pinned to one
CPU when it can be). Memory: the resident set size after each tenth of the run; it
must stay flat. Goal: at least 20,000 entries/s.

    .venv/bin/python bench/ct_parse_match.py
    .venv/bin/python bench/ct_parse_match.py --entries 1000000
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from certvigil.ct.codec import DecodeError
from certvigil.ct.entry import LogEntry
from certvigil.ct.errors import MalformedEntryError
from certvigil.ct.match import WatchList
from certvigil.ct.names import entry_names
from certvigil.ct.rfc6962 import complete_entry, parse_get_entries
from certvigil.ct.static_ct import data_tile, issuer_path, parse_data_tile

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "ct"
NAVIGLI = DATA / "static-ct" / "navigli2025h2"


def _tiles() -> list[bytes]:
    return [(NAVIGLI / data_tile(i).path).read_bytes() for i in range(4)]


def _get_entries_answers(tiles: list[bytes]) -> list[tuple[bytes, int]]:
    """get-entries answers (body, start) holding the tiles' entries, as a log serves them."""
    answers = []
    for index, raw in enumerate(tiles):
        tile = parse_data_tile(raw, data_tile(index))
        items = []
        for entry in tile.entries:
            ts = entry.entry
            leaf = (
                b"\x00\x00"
                + ts.timestamp.to_bytes(8, "big")
                + int(ts.entry_type).to_bytes(2, "big")
                + (ts.issuer_key_hash or b"")
                + len(ts.certificate).to_bytes(3, "big")
                + ts.certificate
                + len(ts.extensions).to_bytes(2, "big")
                + ts.extensions
            )
            chain = b"".join(
                len(der).to_bytes(3, "big") + der
                for der in (
                    (NAVIGLI / issuer_path(fp)).read_bytes() for fp in entry.chain_fingerprints
                )
            )
            precert = entry.precertificate or b""
            extra = (
                len(precert).to_bytes(3, "big") + precert + len(chain).to_bytes(3, "big") + chain
            )
            items.append(
                {
                    "leaf_input": base64.b64encode(leaf).decode(),
                    "extra_data": base64.b64encode(extra).decode(),
                }
            )
        answers.append((json.dumps({"entries": items}).encode(), index * 256))
    for name, start in (
        (
            "rfc6962/argon2027h1/get-entries_start_380000000_end_380000004_TRUNCATED-from-end_380000031.json",
            380000000,
        ),
        ("rfc6962/pilot/get-entries_start_0_end_3.json", 0),
    ):
        answers.append(((DATA / name).read_bytes(), start))
    return answers


def _watch_list(tiles: list[bytes], real_domains: int = 40) -> tuple[WatchList, int]:
    domains = _watch_domains(tiles, real_domains)
    return WatchList(domains), len(domains)


def _watch_domains(tiles: list[bytes], real_domains: int) -> list[str]:
    """1,000 domains: ``real_domains`` that occur in the data, the others made up."""
    registrable: dict[str, None] = {}
    for index, raw in enumerate(tiles):
        for entry in parse_data_tile(raw, data_tile(index)).entries:
            for name in entry_names(entry).dns_names:
                labels = name.removeprefix("*.").split(".")
                if len(labels) >= 2:
                    registrable[".".join(labels[-2:])] = None
    rng = random.Random(11)
    real = rng.sample(sorted(registrable), real_domains)
    letters = "abcdefghijklmnopqrstuvwxyz"
    others = {
        "".join(rng.choice(letters) for _ in range(rng.randint(5, 12)))
        + rng.choice((".com", ".net", ".org", ".de", ".co.uk"))
        for _ in range(2000)
    }
    return real + sorted(others - set(real))[: 1000 - len(real)]


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _run(label: str, total: int, batch: Callable[[], tuple[int, int, int]]) -> None:
    done = matched = malformed = 0
    samples: list[float] = []
    step = total // 10
    next_sample = step
    start_cpu = time.process_time()
    start = time.perf_counter()
    while done < total:
        count, hits, bad = batch()
        done += count
        matched += hits
        malformed += bad
        if done >= next_sample:
            samples.append(_rss_mib())
            next_sample += step
    wall = time.perf_counter() - start
    cpu = time.process_time() - start_cpu
    print(
        f"{label:8} {done:>9,} entries  {done / cpu:>9,.0f} entries/s (CPU)  "
        f"{done / wall:>9,.0f} entries/s (wall)  matched {matched:,}  malformed {malformed}"
    )
    print(f"{'':8} RSS MiB by tenths: {' '.join(f'{s:.1f}' for s in samples)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument(
        "--real-domains",
        type=int,
        default=40,
        help="watched domains that occur in the data (40: about 38%% of entries match; "
        "on the real firehose a watch matches a tiny share)",
    )
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    tiles = _tiles()
    answers = _get_entries_answers(tiles)
    watch, size = _watch_list(tiles, args.real_domains)
    print(
        f"watch list: {size} domains; entries: 1,024 in tiles, {len(answers)} get-entries answers"
    )

    def match_entries(entries: Sequence[LogEntry]) -> tuple[int, int]:
        hits = bad = 0
        for entry in entries:
            try:
                names = entry_names(entry)
            except MalformedEntryError:
                bad += 1
                continue
            if watch.match(names.dns_names):
                hits += 1
                try:
                    # What the watch does for a match: decode a lazily parsed chain.
                    complete_entry(entry)
                except MalformedEntryError:
                    bad += 1
        return hits, bad

    tile_cycle: Iterator[tuple[int, bytes]] = iter(())

    def static_batch() -> tuple[int, int, int]:
        nonlocal tile_cycle
        try:
            index, raw = next(tile_cycle)
        except StopIteration:
            tile_cycle = iter(list(enumerate(tiles)))
            index, raw = next(tile_cycle)
        tile = parse_data_tile(raw, data_tile(index))
        hits, bad = match_entries(tile.entries)
        return len(tile.entries) + len(tile.malformed), hits, bad + len(tile.malformed)

    answer_cycle: Iterator[tuple[bytes, int]] = iter(())

    def rfc6962_batch() -> tuple[int, int, int]:
        nonlocal answer_cycle
        try:
            body, first = next(answer_cycle)
        except StopIteration:
            answer_cycle = iter(answers)
            body, first = next(answer_cycle)
        batch = parse_get_entries(body, first, first + 255)
        hits, bad = match_entries(batch.entries)
        return batch.count, hits, bad + len(batch.malformed)

    lazy_cycle: Iterator[tuple[bytes, int]] = iter(())

    def rfc6962_lazy_batch() -> tuple[int, int, int]:
        nonlocal lazy_cycle
        try:
            body, first = next(lazy_cycle)
        except StopIteration:
            lazy_cycle = iter(answers)
            body, first = next(lazy_cycle)
        batch = parse_get_entries(body, first, first + 255, lazy_extra=True)
        hits, bad = match_entries(batch.entries)
        return batch.count, hits, bad + len(batch.malformed)

    try:
        _run("static", args.entries, static_batch)
        _run("rfc6962", args.entries, rfc6962_batch)
        _run("lazy", args.entries, rfc6962_lazy_batch)
    except DecodeError as exc:  # the data is real and parses; this would be a bug
        raise SystemExit(f"unexpected parse failure: {exc}") from None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.1f} MiB")


if __name__ == "__main__":
    main()

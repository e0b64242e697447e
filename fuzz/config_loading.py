"""Fuzz campaign over configuration loading: does ``config check`` accept only what runs?

Each input is a configuration text (YAML, JSON or TOML) made by mutating a seed corpus:
structural mutations (a value replaced by a hostile one, keys added or dropped, then
serialised) and textual ones (YAML tags, anchors, NUL, tabs, brackets inserted; spans
deleted; lines swapped). Every input is loaded as ``config check`` loads it and, when
accepted, put through what the daemon does with a configuration at start-up and after
its first cycle (alert thresholds, routes, target expansion, retention and durations).

Outcomes: ``accepted``, ``refused`` (a ``ConfigError``, the only allowed failure) and
``crash`` (any other exception, or an accepted value the daemon cannot use). A run
prints the counts and each distinct crash kind with one reproducing input.

    PYTHONPATH=src .venv/bin/python fuzz/config_loading.py --inputs 20000 --seed 1
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
import traceback
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from certvigil.config.expand import expand_targets
from certvigil.config.loading import load_config_text
from certvigil.config.sample import SAMPLE_YAML
from certvigil.errors import ConfigError

HOSTILE_VALUES: list[Any] = [
    0,
    -1,
    1,
    10**10,
    10**20,
    -(10**20),
    99999999999,
    2**63,
    1.5,
    -0.0,
    1e308,
    float("nan"),
    float("inf"),
    float("-inf"),
    True,
    None,
    "",
    " ",
    "abc",
    "1h",
    "0s",
    "-5m",
    "1e400",
    "9" * 400,
    ".nan",
    "nan%",
    "0.0000000001%",
    "99.9999999%",
    "100%",
    "20%",
    "30d",
    "0d",
    "1_000",
    "a\x00b",
    "a b",
    "\x1b[31mred",
    "\u202eevil",
    "é.example",
    "*.example.org",
    "127.0.0.1",
    "::1",
    "10.0.0.0/8",
    "[::1]:443",
    "x" * 5000,
    [],
    [1],
    [[]],
    {},
    {"at": 3},
    {"at": "nan%"},
    {"at": 3, "severity": "bogus"},
    {"x": 1},
    ["a", 1, None],
]
"""Values swapped in for the seed's: bounds, non-finite numbers, control characters."""

TEXT_TOKENS = [
    "!!float ",
    "!!int ",
    "!!timestamp ",
    "!!binary ",
    "!!python/object:os.system ",
    "!!str ",
    "!!map ",
    "!!seq ",
    "&a ",
    "*a",
    "*b",
    "<<: ",
    ": ",
    ":",
    "- ",
    "\t",
    "[",
    "]",
    "{",
    "}",
    '"',
    "'",
    "#",
    "\n",
    "\x00",
    "\x1b",
    "\u202e",
    "\ufeff",
    ".nan",
    ".inf",
    "-.inf",
    "1e999",
    "99999999999999999999",
    "~",
    "? ",
    "|",
    ">",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "\\",
    "=",
    "[[",
    "]]",
    "NaN",
    "Infinity",
]
"""Fragments inserted into texts: YAML tags, anchors, indicators, hostile characters."""

SEEDS_YAML = [
    SAMPLE_YAML,
    "scan:\n  interval: 1h\n  timeout: 5s\nalerts:\n  thresholds: [30, '20%']\n",
    "targets:\n  - host: www.example.org\n    ports: [443, 8443]\n    sni: www.example.org\n",
    "retention_days: 30\nlogging:\n  level: debug\n",
    "database_url: inventory.db\nalerts:\n  routes:\n    - url: json://127.0.0.1/x\n",
]
SEED_TOML = (
    'database_url = "x.db"\nretention_days = 30\n[scan]\ninterval = "1h"\n'
    '[[targets]]\nhost = "a.example"\nport = 443\n'
)


def _mutate_structure(rng: random.Random, data: Any, depth: int = 0) -> Any:
    if isinstance(data, dict) and data and depth < 6:
        out = dict(data)
        key = rng.choice(list(out))
        roll = rng.random()
        if roll < 0.45:
            out[key] = _mutate_structure(rng, out[key], depth + 1)
        elif roll < 0.75:
            out[key] = rng.choice(HOSTILE_VALUES)
        elif roll < 0.85:
            del out[key]
        else:
            out[rng.choice([key + "x", key[:-1], "colour", key.upper()])] = rng.choice(
                HOSTILE_VALUES
            )
        return out
    if isinstance(data, list) and data and depth < 6:
        out_list = list(data)
        index = rng.randrange(len(out_list))
        if rng.random() < 0.6:
            out_list[index] = _mutate_structure(rng, out_list[index], depth + 1)
        else:
            out_list[index] = rng.choice(HOSTILE_VALUES)
        return out_list
    return rng.choice(HOSTILE_VALUES)


def _mutate_text(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 4)):
        roll = rng.random()
        pos = rng.randrange(len(text) + 1)
        if roll < 0.5:
            text = text[:pos] + rng.choice(TEXT_TOKENS) + text[pos:]
        elif roll < 0.7 and text:
            end = min(len(text), pos + rng.randint(1, 20))
            text = text[:pos] + text[end:]
        elif roll < 0.85:
            lines = text.split("\n")
            if len(lines) > 1:
                i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
                lines[i], lines[j] = lines[j], lines[i]
            text = "\n".join(lines)
        else:
            text = text[:pos] + chr(rng.randrange(0, 0x3000)) + text[pos:]
    return text


def make_input(rng: random.Random) -> tuple[str, str]:
    """One (format, text) input."""
    roll = rng.random()
    seed = rng.choice(SEEDS_YAML)
    if roll < 0.4:
        data = _mutate_structure(rng, yaml.safe_load(seed))
        if rng.random() < 0.5:
            return "json", json.dumps(data, default=str)
        return "yaml", yaml.safe_dump(data, allow_unicode=True)
    if roll < 0.9:
        return "yaml", _mutate_text(rng, seed)
    if roll < 0.95:
        return "json", _mutate_text(rng, json.dumps(yaml.safe_load(seed), default=str))
    return "toml", _mutate_text(rng, SEED_TOML)


def daemon_accepts(loaded: Any) -> None:
    """What the daemon does with a configuration at start-up and after its first cycle.

    Raises:
        ConfigError: A target source problem (an accepted outcome).
        AssertionError, or anything else: the configuration passed but cannot run.
    """
    from certvigil.alerts.routing import routes_from_config
    from certvigil.daemon.runner import expiry_thresholds

    config = loaded.config
    expiry_thresholds(config.alerts.thresholds)
    routes_from_config(config.alerts.routes)
    durations = [
        config.scan.interval_s,
        config.scan.jitter_s,
        config.scan.timeout_s,
        config.scan.shutdown_grace_s,
    ]
    for entry in (*config.targets, *config.sources):
        if entry.thresholds is not None:
            expiry_thresholds(entry.thresholds)
        durations += [d for d in (entry.interval_s, entry.timeout_s) if d is not None]
        if entry.sni is not None:
            assert entry.sni.isprintable() and " " not in entry.sni, "sni"
    for seconds in durations:
        assert math.isfinite(seconds) and seconds >= 0, f"duration {seconds}"
        timedelta(seconds=seconds)
    if config.retention_days is not None:
        datetime.now(UTC) - timedelta(days=config.retention_days)
    expand_targets(loaded)


def run_one(fmt: str, text: str) -> str:
    """``accepted``, ``refused`` (a ConfigError), or a crash kind (exception and place)."""
    path = Path(f"/nonexistent-fuzz-dir/certvigil.{fmt}")
    try:
        loaded = load_config_text(text, fmt=fmt, path=path)  # type: ignore[arg-type]
        daemon_accepts(loaded)
    except ConfigError:
        return "refused"
    except Exception as exc:  # noqa: BLE001 - the point is to find them
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        return f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}"
    return "accepted"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    crashes: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    examples: dict[str, tuple[str, str]] = {}
    started = time.perf_counter()
    sys.setrecursionlimit(10_000)
    for _ in range(args.inputs):
        fmt, text = make_input(rng)
        kind = run_one(fmt, text)
        if kind in ("accepted", "refused"):
            outcomes[kind] += 1
        else:
            crashes[kind] += 1
            examples.setdefault(kind, (fmt, text))
    elapsed = time.perf_counter() - started
    print(f"config loading: {args.inputs} inputs, seed {args.seed}, {elapsed:.1f} s")
    print(f"accepted: {outcomes['accepted']}, refused (ConfigError): {outcomes['refused']}")
    print(f"crashes: {sum(crashes.values())}, distinct kinds: {len(crashes)}")
    for kind, count in crashes.most_common():
        fmt, text = examples[kind]
        print(f"  {count:6d}  {kind}  e.g. ({fmt}) {text[:120]!r}")


if __name__ == "__main__":
    main()

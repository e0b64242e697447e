"""Property tests: loading any configuration text either gives one the daemon can run
or raises ConfigError naming the file (never another exception)."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from certvigil.alerts.routing import routes_from_config
from certvigil.config.loading import LoadedConfig, load_config_text
from certvigil.config.sample import SAMPLE_YAML
from certvigil.daemon.runner import expiry_thresholds
from certvigil.errors import ConfigError

PATH = Path("/nonexistent-test-dir/certvigil.yaml")

KEYS = [
    "scan",
    "alerts",
    "targets",
    "sources",
    "trust",
    "logging",
    "retention_days",
    "database_url",
    "interval",
    "jitter",
    "timeout",
    "shutdown_grace",
    "concurrency",
    "thresholds",
    "routes",
    "host",
    "port",
    "ports",
    "sni",
    "starttls",
    "tags",
    "at",
    "severity",
    "url",
    "public",
    "ca_files",
    "level",
    "format",
    "type",
    "path",
    "colour",
]
SCALARS = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.sampled_from(
        [
            "1h",
            "0s",
            "-5m",
            ".nan",
            "nan%",
            "0.0000000001%",
            "99.9999999%",
            "20%",
            "30d",
            "a\x00b",
            "a b",
            "\u202eevil",
            "127.0.0.1",
            "10.0.0.0/8",
            "9" * 400,
            "1e400",
        ]
    ),
    st.text(max_size=12),
)
VALUES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=4),
    ),
    max_leaves=12,
)
DOCUMENTS = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=6)

TOKENS = st.sampled_from(
    [
        "!!float ",
        "!!int ",
        "!!timestamp ",
        "!!binary ",
        "&a ",
        "*a",
        ": ",
        "- ",
        "\t",
        "[",
        "{",
        '"',
        "'",
        "\n",
        "\x00",
        "\u202e",
        ".nan",
        "-.inf",
        "1e999",
        "---\n",
        "? ",
        "|",
    ]
)


def daemon_can_run(loaded: LoadedConfig) -> None:
    """What the daemon does with a configuration at start-up and after its first cycle."""
    config = loaded.config
    expiry_thresholds(config.alerts.thresholds)
    routes_from_config(config.alerts.routes)
    durations = [config.scan.interval_s, config.scan.jitter_s, config.scan.timeout_s]
    for entry in (*config.targets, *config.sources):
        if entry.thresholds is not None:
            expiry_thresholds(entry.thresholds)
        durations += [d for d in (entry.interval_s, entry.timeout_s) if d is not None]
    for seconds in durations:
        assert math.isfinite(seconds)
        timedelta(seconds=seconds)
    if config.retention_days is not None:
        datetime.now(UTC) - timedelta(days=config.retention_days)


def _load(text: str, fmt: str) -> None:
    try:
        loaded = load_config_text(text, fmt=fmt, path=PATH)  # type: ignore[arg-type]
    except ConfigError as exc:
        assert str(exc).startswith(str(PATH))
        return
    daemon_can_run(loaded)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(DOCUMENTS, st.sampled_from(["yaml", "json"]))
@example({"retention_days": 10000000000}, "yaml")
@example({"alerts": {"thresholds": [99999999999, "0.0000000001%"]}}, "json")
@example({"scan": {"interval": float("nan")}}, "yaml")
@example({"targets": [{"host": "a.example", "sni": "a\x00b"}]}, "yaml")
def test_any_document_loads_runnable_or_raises_config_error(
    document: dict[str, Any], fmt: str
) -> None:
    """A document of any shape and values is either runnable or a ConfigError."""
    if fmt == "json":
        text = json.dumps(document)
    else:
        text = yaml.safe_dump(document, allow_unicode=True)
    _load(text, fmt)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(min_value=0), TOKENS), min_size=1, max_size=5))
@example([(0, "retention_days: !!float abc\n")])
@example([(0, "retention_days: !!timestamp 2001-13-99zz\n")])
@example([(0, "x: &a [*a]\n")])
@example([(0, "y: !!map text\n")])
@example([(0, "y: !!map [1, 2]\n")])
def test_any_edit_of_the_sample_loads_runnable_or_raises_config_error(
    edits: list[tuple[int, str]],
) -> None:
    """The sample configuration with YAML tags, anchors and odd characters inserted
    anywhere is either runnable or a ConfigError."""
    text = SAMPLE_YAML
    for position, token in edits:
        at = position % (len(text) + 1)
        text = text[:at] + token + text[at:]
    _load(text, "yaml")

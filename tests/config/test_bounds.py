"""Configurations the daemon cannot run are refused by ``config check``, at their line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from certvigil.alerts.rules import parse_threshold
from certvigil.config import Threshold, load_config
from certvigil.config.loading import load_config_text
from certvigil.config.units import MAX_DURATION_S, parse_duration_s
from certvigil.errors import ConfigError


def _error(tmp_path: Path, text: str) -> ConfigError:
    path = tmp_path / "certvigil.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    return raised.value


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("scan:\n  interval: 1h\nretention_days: !!float abc\n", 3, "cannot be read as !!float"),
        ("retention_days: !!timestamp 2001-13-99zz\n", 1, "cannot be read as !!timestamp"),
        ("scan:\n  concurrency: !!int 12abc\n", 2, "cannot be read as !!int"),
        ("targets:\n  - host: a.example\n    sni: !!map a.example\n", 3, "mapping"),
        ("scan:\n  interval: !!map [30, '20%']\n", 2, "mapping"),
        ("retention_days: 10000000000\n", 1, "less than or equal to 36500"),
        ("alerts:\n  thresholds: [99999999999]\n", 2, "days must be 1..3650"),
        ("alerts:\n  thresholds: ['0.0000000001%']\n", 2, "between 0.01% and 99.99%"),
        ("alerts:\n  thresholds: ['99.9999999%']\n", 2, "between 0.01% and 99.99%"),
        ("alerts:\n  thresholds: ['nan%']\n", 2, "must be whole days"),
        ("scan:\n  interval: .nan\n", 2, "finite"),
        ("scan:\n  timeout: .inf\n", 2, "finite"),
        ("scan:\n  jitter: -.inf\n", 2, "finite"),
        ("scan:\n  shutdown_grace: 999999999999999999999999w\n", 2, "at most"),
        ("scan:\n  interval: '9" + "9" * 400 + "'\n", 2, "more than 64 characters"),
        ("targets:\n  - host: a.example\n    interval: 0.001\n", 3, "greater than or equal to 1"),
        ('targets:\n  - host: a.example\n    sni: "a\\0b"\n', 3, "not a server name"),
        ("targets:\n  - host: a.example\n    sni: a b.example\n", 3, "not a server name"),
        ("targets:\n  - host: a.example\n    sni: 192.0.2.1\n", 3, "never sent as SNI"),
        ('logging:\n  file: "log\\0file"\n', 2, "control characters"),
        ('database_url: "x\\x1b[31m.db"\n', 1, "control characters"),
    ],
)
def test_values_the_daemon_cannot_use_are_config_errors(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    """Explicit tags, numbers past their bounds, NaN and infinity, bad SNI and control
    characters are each a ConfigError at the value's line, never another exception."""
    error = _error(tmp_path, text)
    assert error.line == line, str(error)
    assert words in str(error)


def test_an_alias_that_contains_itself_is_refused(tmp_path: Path) -> None:
    """A YAML alias that refers to its own list is an error, not endless recursion."""
    error = _error(tmp_path, "targets: &a [*a]\n")
    assert "refers to the mapping or list it is in" in str(error)


def test_aliases_that_expand_past_the_bound_are_refused(tmp_path: Path) -> None:
    """Nested aliases that would expand to millions of values are refused (billion laughs)."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 8)]
    error = _error(tmp_path, "\n".join(lines) + "\n")
    assert "more than 1,000,000 values" in str(error)


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deep.json", "[" * 100_000 + "]" * 100_000),
        ("deep.yaml", "a: " + "[" * 5000 + "]" * 5000 + "\n"),
        ("nan.json", '{"retention_days": NaN}'),
        ("long.json", '{"retention_days": ' + "9" * 5000 + "}"),
        ("long.toml", "retention_days = " + "9" * 5000 + "\n"),
    ],
)
def test_hostile_documents_are_config_errors(tmp_path: Path, name: str, text: str) -> None:
    """Deep nesting, NaN and numbers too long to convert are ConfigErrors in every format."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert "set_int_max_str_digits" not in str(raised.value)


def test_a_file_that_is_not_utf8_names_its_line(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are a ConfigError with the line, not a codec message."""
    path = tmp_path / "c.yaml"
    path.write_bytes(b"scan:\n  interval: 1h\n# caf\xe9\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert raised.value.line == 3
    assert "not UTF-8 text" in str(raised.value)
    assert "codec" not in str(raised.value)


def test_a_missing_file_is_said_in_words(tmp_path: Path) -> None:
    """A missing configuration says "no such file", without "[Errno 2]"."""
    with pytest.raises(ConfigError) as raised:
        load_config(tmp_path / "none.yaml")
    assert str(raised.value) == f"{tmp_path / 'none.yaml'}: no such file"


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("scan:\n  interval 1h\n  timeout: 5\n", 2, '"interval 1h" is not "key: value"'),
        ('scan:\n  interval: "1h\n  timeout: 5\n', 2, "a quoted text is not closed"),
        ("targets: [a.example,\n  b.example\nscan: {}\n", 1, 'a "[" list is not closed'),
        ("scan:\n\tinterval: 1h\n", 2, "a tab character"),
    ],
)
def test_yaml_syntax_errors_point_at_the_mistake(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    """A YAML syntax error is reported at the line where the mistake was made, in words."""
    error = _error(tmp_path, text)
    assert error.line == line, str(error)
    assert words in str(error)


@pytest.mark.parametrize(
    ("text", "location", "suggestion"),
    [
        ("scan:\n  intervall: 1h\n", "scan.intervall", "interval"),
        ("retension_days: 3\n", "retension_days", "retention_days"),
        ("targets:\n  - host: a.example\n    prot: 8443\n", "targets[0].prot", "port"),
        ("alerts:\n  thresholds: [{at: 3, severty: critical}]\n", None, "severity"),
    ],
)
def test_unknown_keys_suggest_the_closest_valid_one(
    tmp_path: Path, text: str, location: str | None, suggestion: str
) -> None:
    """An unknown key is reported with the closest valid key of its section."""
    error = _error(tmp_path, text)
    assert f'did you mean "{suggestion}"?' in str(error)
    if location is not None:
        assert error.location == location


@settings(max_examples=300)
@given(
    st.one_of(
        st.integers(min_value=-(10**12), max_value=10**12),
        st.from_regex(r"\A[0-9]{1,8}(\.[0-9]{1,8})?[d%]?\Z"),
    )
)
@example("0.0000000001%")
@example("99.999999%")
@example(99999999999)
def test_every_accepted_threshold_reads_back_in_the_alert_rules(value: int | str) -> None:
    """A threshold the configuration accepts gives a label that the daemon's alert rules
    read back (a label such as "1e-10%" failed at start-up)."""
    try:
        threshold = Threshold.model_validate(value)
    except ValueError:
        return
    parse_threshold(threshold.label)


@settings(max_examples=300)
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=30)))
@example(float("nan"))
@example("9" * 400)
def test_an_accepted_duration_is_finite_and_bounded(value: float | str) -> None:
    """Every duration accepted is a finite number of seconds within the bound."""
    try:
        seconds = parse_duration_s(value)
    except ValueError:
        return
    assert math.isfinite(seconds)
    assert 0 < seconds <= MAX_DURATION_S


def test_json_in_yaml_clothing_keeps_its_line(tmp_path: Path) -> None:
    """An error inside a JSON document names the JSON line of the field."""
    text = '{\n"scan": {\n"interval": "NaNs"\n}\n}\n'
    with pytest.raises(ConfigError) as raised:
        load_config_text(text, fmt="json", path=tmp_path / "c.json")
    assert raised.value.line == 3


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("c.yaml", "scan:\n  interval: 1h\n  timeout: 5\n  interval: 2h\n", 4),
        ("c.json", '{"retention_days": 30, "retention_days": 40}', None),
    ],
)
def test_a_key_set_twice_is_refused(tmp_path: Path, name: str, text: str, line: int | None) -> None:
    """A key written twice in one mapping is a mistake, not a silent "last one wins"."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert "is set twice" in str(raised.value)
    assert raised.value.line == line


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    """A key merged in with "<<" may be set again beside it, as YAML intends."""
    path = tmp_path / "c.yaml"
    path.write_text(
        "targets:\n"
        "  - &d {host: a.example, port: 443, tags: [web]}\n"
        "  - <<: *d\n    host: b.example\n",
        encoding="utf-8",
    )
    targets = load_config(path).config.targets
    assert [(t.host, t.port, t.tags) for t in targets] == [
        ("a.example", 443, ("web",)),
        ("b.example", 443, ("web",)),
    ]

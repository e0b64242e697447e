"""The exposition text is valid whatever label values a certificate carries."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.integrations.prometheus import Family, MetricType, Sample, render
from tests.integrations.exposition import ExpositionError, parse


@given(st.text(max_size=200))
@example('a"b\\c\nd}{,=')
@example("\\n")
def test_any_label_value_round_trips(value: str) -> None:
    """A label value with quotes, backslashes, newlines or braces parses back unchanged."""
    family = Family(
        name="probe_ssl_last_chain_info",
        type=MetricType.GAUGE,
        help='help with \\ and \n newline and "quotes"',
        samples=(Sample((("subject", value), ("issuer", "x")), 1),),
    )
    parsed = parse(render([family]))
    assert parsed.value("probe_ssl_last_chain_info", subject=value, issuer="x") == 1
    assert parsed.helps["probe_ssl_last_chain_info"] == 'help with \\ and \n newline and "quotes"'


def test_long_label_values_are_cut() -> None:
    """A label value over 1024 characters is cut: one certificate cannot bloat a scrape."""
    family = Family(
        name="x_info",
        type=MetricType.GAUGE,
        help="h",
        samples=(Sample((("subject", "a" * 5000),), 1),),
    )
    (labels,) = parse(render([family])).labels_of("x_info")
    assert len(labels["subject"]) == 1024
    assert labels["subject"].endswith("...")


def test_strict_parser_rejects_unescaped_text() -> None:
    """The test parser itself fails on a raw quote or a sample without a TYPE."""
    with pytest.raises(ExpositionError):
        parse('# TYPE x gauge\nx{a="b"c"} 1\n')
    with pytest.raises(ExpositionError):
        parse("y 1\n")


def test_values_are_written_exactly() -> None:
    """Integers print without a fraction, fractions in full, infinities as +Inf/-Inf."""
    family = Family(
        name="v",
        type=MetricType.GAUGE,
        help="h",
        samples=(
            Sample((("k", "a"),), 3),
            Sample((("k", "b"),), 0.125),
            Sample((("k", "c"),), float("inf")),
            Sample((("k", "d"),), 1796294405.0),
        ),
    )
    assert render([family]).splitlines()[2:] == [
        'v{k="a"} 3',
        'v{k="b"} 0.125',
        'v{k="c"} +Inf',
        'v{k="d"} 1796294405',
    ]

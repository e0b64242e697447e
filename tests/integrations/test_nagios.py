"""The plugin text stays one line with no perfdata separator, whatever it is given."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.integrations.nagios import CheckResult, NagiosState, plugin_text, unknown_result


@given(st.text(max_size=300))
@example("a|b\nc\r\x00\u2028\u202e\\")
@example("\xa0")
def test_plugin_text_has_no_separator_or_control_characters(text: str) -> None:
    """Escaped text has no "|", no line breaks and no control or format characters."""
    out = plugin_text(text)
    assert "|" not in out
    assert len(out.splitlines()) <= 1
    assert all(ch.isprintable() for ch in out)


def test_plugin_text_escapes_readably_and_cuts() -> None:
    """ "|" and newline read as \\x7c and \\x0a; a backslash doubles; long text is cut."""
    assert plugin_text("a|b\nc\\d") == "a\\x7cb\\x0ac\\\\d"
    assert plugin_text("é\u202e") == "é\\u202e"
    assert plugin_text("x" * 10, limit=4) == "xxxx..."


def test_render_puts_perfdata_on_the_status_line() -> None:
    """The status line carries the perfdata after " | " and the details follow it."""
    result = CheckResult(
        state=NagiosState.WARNING,
        summary="a:443: soon",
        perfdata=("days=3;20;15;;", "chain_length=2;;;0;"),
        details=("one", "two"),
    )
    assert result.render() == (
        "CERTVIGIL WARNING - a:443: soon | days=3;20;15;; chain_length=2;;;0;\none\ntwo\n"
    )


def test_unknown_result_escapes_its_reason() -> None:
    """An UNKNOWN reason from outside text is escaped too."""
    result = unknown_result("bad | thing\nhere", target="h:1")
    assert result.render() == "CERTVIGIL UNKNOWN - h:1: bad \\x7c thing\\x0ahere\n"

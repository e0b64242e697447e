"""Property tests: any target file is read line by line without an exception, and only
well-formed names and addresses become targets."""

from __future__ import annotations

import io
import itertools

from hypothesis import example, given, settings
from hypothesis import strategies as st

from certvigil.errors import TargetError
from certvigil.targets.ipaddr import ip_or_none
from certvigil.targets.parse import (
    ExpansionOptions,
    iter_file_specs,
    iter_targets,
    normalise_hostname,
)

PIECES = st.sampled_from(
    [
        "example.org",
        "bücher.example",
        "192.0.2.1",
        "2001:db8::1",
        "[2001:db8::1]:8443",
        "10.1.2.0/30",
        ":443",
        ":0",
        ":99999",
        ",8443",
        " ",
        "\t",
        "#",
        ".",
        "..",
        "-",
        "_",
        "[",
        "]",
        "/",
        "://",
        "\x00",
        "\x1b",
        "\u202e",
        "\u200b",
        "\r",
        "é",
        "exa mple.com",
        "\uff0e",
        "\u3002",
    ]
)
LINES = st.lists(
    st.one_of(st.lists(PIECES, max_size=4).map("".join), st.text(max_size=20)), max_size=6
)


@settings(max_examples=500)
@given(LINES)
@example(["exa mple.com"])
@example([])
@example(["# only a comment", ""])
@example(["a.example\u200b"])
@example(["mple\uff0e.com"])
@example(["example.org:443,8-443", "exa 192.0.2.10:25"])
def test_target_files_never_raise_and_yield_only_valid_names(lines: list[str]) -> None:
    """Every line is one target or one TargetError naming the file and line; targets are
    IP addresses or normalised DNS names; a line with inner white space yields none."""
    text = "\n".join(lines)
    errors: list[TargetError] = []
    specs = list(iter_file_specs(io.StringIO(text), source="t.txt"))
    assert len({spec.position for spec in specs}) == len(specs)
    for spec in specs:
        before = len(errors)
        targets = list(
            itertools.islice(
                iter_targets([spec], options=ExpansionOptions(), on_error=errors.append), 200
            )
        )
        for target in targets:
            if ip_or_none(target.host) is None:
                assert normalise_hostname(target.host) == target.host
            assert 1 <= target.port <= 65535
        if any(ch.isspace() for ch in spec.text):
            assert len(errors) > before and not targets
    for error in errors:
        assert str(error).startswith("t.txt")

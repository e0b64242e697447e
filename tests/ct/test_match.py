"""The watch list: subtrees, wildcards both ways, look-alike suffixes, IDNs; against a reference."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.ct.errors import WatchListError
from certvigil.ct.match import NameMatch, WatchList


def _watched(watch: WatchList, name: str) -> list[str]:
    return [m.watched for m in watch.watched_for(name)]


@pytest.mark.parametrize(
    ("name", "matched"),
    [
        ("example.com", True),
        ("www.example.com", True),
        ("a.b.c.example.com", True),
        ("*.example.com", True),
        ("*.www.example.com", True),
        ("notexample.com", False),
        ("example.com.evil.net", False),
        ("example.co", False),
        ("com", False),
        ("*.com", True),  # a wildcard one label above covers example.com itself
        ("wwwexample.com", False),
    ],
)
def test_a_watch_covers_the_name_and_its_subtree_only(name: str, matched: bool) -> None:
    """example.com covers itself and every name below it, and nothing that merely ends alike."""
    watch = WatchList(["example.com"])

    assert bool(watch.watched_for(name)) is matched


def test_wildcards_in_both_directions() -> None:
    """A watch on a.example.com sees *.example.com (which covers it) but not *.b.example.com."""
    watch = WatchList(["a.example.com"])

    assert watch.watched_for("*.example.com") == [
        NameMatch("*.example.com", "a.example.com", via_wildcard=True)
    ]
    assert watch.watched_for("*.a.example.com") == [NameMatch("*.a.example.com", "a.example.com")]
    assert watch.watched_for("*.b.example.com") == []
    assert watch.watched_for("*.com") == []  # covers example.com, not a.example.com
    assert watch.watched_for("b.example.com") == []


def test_nested_watches_all_match_most_specific_first() -> None:
    """A name under two watched domains matches both, the more specific first."""
    watch = WatchList(["example.com", "a.example.com"])

    assert _watched(watch, "x.a.example.com") == ["a.example.com", "example.com"]
    assert _watched(watch, "*.example.com") == ["a.example.com", "example.com"]


def test_watched_domains_are_normalised() -> None:
    """Case, a trailing dot and Unicode in the watch list are normalised like names."""
    watch = WatchList(["Bücher.Example.", "EXAMPLE.org"])

    assert len(watch) == 2
    assert "xn--bcher-kva.example" in watch
    assert _watched(watch, "www.xn--bcher-kva.example") == ["xn--bcher-kva.example"]
    assert _watched(watch, "example.org") == ["example.org"]


@pytest.mark.parametrize(
    ("domain", "reason"), [("*.example.com", "drop the"), ("not a name", "not a domain")]
)
def test_bad_watches_are_refused(domain: str, reason: str) -> None:
    """A wildcard or a non-name in the watch list raises WatchListError naming it."""
    with pytest.raises(WatchListError, match=reason):
        WatchList([domain])


def test_match_over_several_names() -> None:
    """match() returns every (name, watched domain) pair of a certificate's names."""
    watch = WatchList(["example.com", "example.net"])

    found = watch.match(["www.example.com", "other.org", "example.net"])

    assert [(m.name, m.watched) for m in found] == [
        ("www.example.com", "example.com"),
        ("example.net", "example.net"),
    ]


def _reference(watched: list[str], name: str) -> set[tuple[str, bool]]:
    """The rule as words say it, by looping over every watched domain."""
    found = set()
    base = name[2:] if name.startswith("*.") else name
    for domain in watched:
        if base == domain or base.endswith("." + domain):
            found.add((domain, False))
        if name.startswith("*.") and domain.partition(".")[2] == base:
            found.add((domain, True))
    return found


_LABELS = st.sampled_from(["a", "b", "ex", "example", "com", "notexample", "xn--bcher-kva"])
_DOMAINS = st.lists(_LABELS, min_size=1, max_size=4).map(".".join)
_NAMES = st.builds(lambda w, d: ("*." if w else "") + d, st.booleans(), _DOMAINS)


@given(watched=st.lists(_DOMAINS, min_size=1, max_size=8), names=st.lists(_NAMES, max_size=8))
@example(watched=["a.example.com"], names=["*.example.com"])
@example(watched=["com", "example.com"], names=["*.com", "notexample.com"])
def test_hashed_lookups_agree_with_the_loop_over_watched_domains(
    watched: list[str], names: list[str]
) -> None:
    """For any watch list and names, the hashed matcher finds what the reference loop finds."""
    watch = WatchList(watched)
    unique = list(dict.fromkeys(watched))
    for name in names:
        found = {(m.watched, m.via_wildcard) for m in watch.watched_for(name)}
        assert found == _reference(unique, name)

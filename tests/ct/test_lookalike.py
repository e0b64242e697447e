"""Look-alike domains: each technique is found, the real domain and its subtree never are."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.ct.entry import LogEntry
from certvigil.ct.errors import WatchListError
from certvigil.ct.lookalike import LookalikeIndex, Technique, registrable
from certvigil.ct.names import entry_names, normalize_name
from certvigil.ct.static_ct import data_tile, parse_data_tile

from .conftest import data


@pytest.fixture(scope="module")
def index() -> LookalikeIndex:
    """Look-alikes of three watched domains, one under a two-label suffix, one an IDN."""
    return LookalikeIndex.build(["www.examplebank.com", "shop.example.co.uk", "bücher.de"])


@pytest.mark.parametrize(
    ("name", "technique", "imitated"),
    [
        ("exampelbank.com", Technique.TRANSPOSITION, "examplebank.com"),
        ("exampebank.com", Technique.OMISSION, "examplebank.com"),
        ("examp1ebank.com", Technique.HOMOGLYPH, "examplebank.com"),
        ("exarnplebank.com", Technique.HOMOGLYPH, "examplebank.com"),
        ("example-bank.com", Technique.HYPHENATION, "examplebank.com"),
        ("examplwbank.com", Technique.REPLACEMENT, "examplebank.com"),
        ("exampleebank.com", Technique.REPETITION, "examplebank.com"),
        ("examplebenk.com", Technique.VOWEL_SWAP, "examplebank.com"),
        ("examplebank.net", Technique.TLD_SWAP, "examplebank.com"),
        ("examplebank.co.uk", Technique.TLD_SWAP, "examplebank.com"),
        ("mxamplebank.com", Technique.BITSQUATTING, "examplebank.com"),
        ("exa.mplebank.com", Technique.SUBDOMAIN, "examplebank.com"),
        ("examplebank1.com", Technique.ADDITION, "examplebank.com"),
        ("login.exampelbank.com", Technique.TRANSPOSITION, "examplebank.com"),
        ("*.exampelbank.com", Technique.TRANSPOSITION, "examplebank.com"),
        ("ex\u0430mplebank.com", Technique.CONFUSABLE, "examplebank.com"),  # Cyrillic a
        ("\u0435x\u0430m\u0440l\u0435b\u0430nk.com", Technique.CONFUSABLE, "examplebank.com"),
        ("exämplebank.com", Technique.CONFUSABLE, "examplebank.com"),
        ("exarnple.co.uk", Technique.HOMOGLYPH, "example.co.uk"),
        ("example.com", Technique.TLD_SWAP, "example.co.uk"),
        ("bucher.de", Technique.CONFUSABLE, "xn--bcher-kva.de"),
    ],
)
def test_each_technique_is_found_with_the_domain_it_imitates(
    index: LookalikeIndex, name: str, technique: Technique, imitated: str
) -> None:
    """A look-alike made by a technique is matched, naming the technique and the domain."""
    normalised = normalize_name(name)
    assert normalised is not None

    found = index.match(normalised)

    assert found is not None
    assert (found.technique, found.imitated) == (technique, imitated)
    assert found.name == normalised


@pytest.mark.parametrize(
    "name",
    [
        "examplebank.com",
        "www.examplebank.com",
        "a.b.c.examplebank.com",
        "*.examplebank.com",
        "example.co.uk",
        "deep.shop.example.co.uk",
        "xn--bcher-kva.de",
        "www.xn--bcher-kva.de",
        "examplebank.com.evil.example",  # imitates nothing at a registrable boundary
        "unrelated.org",
        "bank.com",
    ],
)
def test_the_real_domains_and_unrelated_names_never_match(index: LookalikeIndex, name: str) -> None:
    """A watched domain, any name below it, and names that merely contain it are no look-alikes."""
    assert index.match(name) is None


def test_a_public_suffix_cannot_be_imitated() -> None:
    """A watched public suffix is skipped and said so; wildcards and junk are refused."""
    index = LookalikeIndex.build(["co.uk", "example.com"])

    assert index.skipped == ("co.uk",)
    assert index.imitated == ("example.com",)
    with pytest.raises(WatchListError, match="drop the"):
        LookalikeIndex.build(["*.example.com"])
    with pytest.raises(WatchListError, match="not a domain name"):
        LookalikeIndex.build(["exa mple.com"])


def test_registrable_uses_the_public_suffix_list_with_private_suffixes() -> None:
    """Registrable domains are cut at ICANN and private suffixes of the bundled list."""
    assert registrable("a.b.example.co.uk").domain == "example.co.uk"
    assert registrable("user.github.io").domain == "user.github.io"
    assert registrable("co.uk").domain == ""


def test_techniques_can_be_chosen() -> None:
    """Only the chosen techniques are indexed: without confusables, a Cyrillic a is missed."""
    index = LookalikeIndex.build(["examplebank.com"], techniques=[Technique.OMISSION])
    cyrillic = normalize_name("ex\u0430mplebank.com")
    assert cyrillic is not None

    assert index.match("exampebank.com") is not None
    assert index.match("exampelbank.com") is None
    assert index.match(cyrillic) is None


def _real_names() -> list[str]:
    names: list[str] = []
    for i in range(4):
        tile = parse_data_tile(data(f"static-ct/navigli2025h2/tile/data/00{i}"), data_tile(i))
        for entry in tile.entries:
            assert isinstance(entry, LogEntry)
            names += entry_names(entry).dns_names
    return names


def test_real_ct_names_under_watched_domains_never_match() -> None:
    """Watching the registrable domains of 1,024 real precerts flags none of their names."""
    names = _real_names()
    watched = sorted({registrable(n).domain for n in names} - {""})
    index = LookalikeIndex.build(watched[:150])
    own = set(watched[:150])

    flagged = [n for n in names if registrable(n).domain in own and index.match(n)]

    assert len(own) == 150
    assert flagged == []


_label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)


@given(prefix=st.lists(_label, max_size=3))
@example(prefix=["www"])
@example(prefix=["exampelbank"])
def test_any_name_below_a_watched_domain_never_matches(
    index: LookalikeIndex, prefix: list[str]
) -> None:
    """Whatever labels stand in front of a watched domain, the name is not a look-alike."""
    name = ".".join([*prefix, "examplebank.com"])

    assert index.match(name) is None


@given(prefix=st.lists(_label, max_size=2))
def test_a_look_alike_is_found_whatever_labels_precede_it(
    index: LookalikeIndex, prefix: list[str]
) -> None:
    """A look-alike registrable domain is found under any labels."""
    found = index.match(".".join([*prefix, "exampelbank.com"]))

    assert found is not None
    assert found.lookalike == "exampelbank.com"

"""Confusable folding: names that look alike fold alike, names that do not stay apart."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.ct.skeleton import changes_ascii, fold_host_name, skeleton


@pytest.mark.parametrize(
    ("lookalike", "original"),
    [
        ("ex\u0430mple.com", "example.com"),  # Cyrillic a (U+0430)
        ("\u0435\u0445\u0430m\u0440l\u0435.com", "example.com"),  # Cyrillic e x a p
        ("examp1e.com", "example.com"),  # digit one for l
        ("rnodern.com", "modern.com"),  # r n for m
        ("g00gle.com", "google.com"),  # zeros for o
        ("exämple.com", "example.com"),  # a diacritic
        ("EXAMPLE.COM", "example.com"),  # case
        ("\u0440\u0430\u0443\u0440\u0430l.com", "paypal.com"),  # all Cyrillic but the l
    ],
)
def test_look_alikes_fold_to_the_same_skeleton(lookalike: str, original: str) -> None:
    """A name written with confusable characters has the skeleton of the name it imitates."""
    assert skeleton(lookalike) == skeleton(original)


@pytest.mark.parametrize(
    ("a", "b"),
    [("example.com", "exampie.com"), ("paypal.com", "paypol.com"), ("bank.com", "banks.com")],
)
def test_different_names_keep_different_skeletons(a: str, b: str) -> None:
    """Folding is not a blur: names that read differently stay different."""
    assert skeleton(a) != skeleton(b)


def test_folding_changes_only_a_few_ascii_characters() -> None:
    """Lower-case letters other than m, and the hyphen and dot, are their own prototypes."""
    changed = changes_ascii()

    assert {"0", "1", "m"} <= changed
    assert not (set("abcdefghijklnopqrstuvwxyz-.") & changed)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=40))
@example("a.b-c")
@example("ǅ.x")
def test_folding_is_idempotent_and_keeps_hyphens(text: str) -> None:
    """Folding a skeleton again changes nothing, and never raises."""
    folded = skeleton(text)

    assert skeleton(folded) == folded


@given(
    st.from_regex(
        r"(\*\.)?([a-z0-9_]([a-z0-9_-]{0,20}[a-z0-9_])?\.){0,4}[a-z0-9]{1,10}", fullmatch=True
    )
)
@example("www.modern-bank01.com")
def test_the_host_name_fast_path_folds_like_the_skeleton(name: str) -> None:
    """For normalised host names the three-replace fast path equals the full skeleton."""
    assert fold_host_name(name) == skeleton(name)

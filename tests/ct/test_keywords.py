"""Keyword rules: CertStreamMonitor's check_rules answers, the blacklist, look-alike keywords."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certvigil.ct.keywords import KeywordRules, KeywordVerdict
from certvigil.ct.names import normalize_name

# The rules of CertStreamMonitor's README, and its four check_rules examples.
SEED = KeywordRules(
    ["paypal", "apple", "account", "secure", "login"], threshold=2, blacklist=["gouv"]
)


@pytest.mark.parametrize(
    ("name", "verdict", "explanation"),
    [
        ("www.google.com", KeywordVerdict.NO_KEYWORD, "no match: none of the 5 search"),
        ("paypal.com", KeywordVerdict.BELOW_THRESHOLD, "no match: 1 keyword found (paypal), below"),
        ("login-paypal.gouv", KeywordVerdict.BLACKLISTED, "but blacklisted by gouv"),
        ("login-paypal.com", KeywordVerdict.MATCH, "match: 2 keywords found (login, paypal)"),
    ],
)
def test_the_seed_examples_give_the_seed_answers(
    name: str, verdict: KeywordVerdict, explanation: str
) -> None:
    """Each of check_rules' documented examples gets its documented verdict and reason."""
    assert SEED.check(name).verdict is verdict
    assert SEED.explain(name).startswith(explanation) or explanation in SEED.explain(name)
    assert SEED.matches(name) is (verdict is KeywordVerdict.MATCH)


def test_keywords_count_once_each_in_order_of_appearance() -> None:
    """A keyword found twice counts once; the threshold counts distinct keywords."""
    rules = KeywordRules(["login", "secure", "bank"], threshold=3)

    assert rules.check("login.login-secure.com").keywords == ("login", "secure")
    assert not rules.matches("login.login-secure.com")
    assert rules.matches("secure-bank-login.com")


def test_look_alike_keywords_count_and_are_named() -> None:
    """paypa1 and paypal in Cyrillic letters count as paypal, and the explanation says so."""
    result = SEED.check("paypa1-secure.com")

    assert result.verdict is KeywordVerdict.MATCH
    assert result.confusable == ("paypal",)
    assert "paypal (as a look-alike)" in SEED.explain("paypa1-secure.com")
    assert SEED.matches(normalize_name("\u0440\u0430\u0443\u0440\u0430l-secure.com") or "")


def test_folding_can_be_turned_off() -> None:
    """Without folding only the keywords as written count."""
    rules = KeywordRules(["paypal", "secure"], threshold=2, fold_confusables=False)

    assert not rules.matches("paypa1-secure.com")
    assert rules.matches("paypal-secure.com")


def test_a_domain_in_the_blacklist_exempts_its_subtree_only() -> None:
    """examplebank.com exempts login.examplebank.com but not examplebank.com.evil.example."""
    rules = KeywordRules(
        ["examplebank", "login", "secure"], threshold=2, blacklist=["examplebank.com"]
    )

    assert rules.check("secure.login.examplebank.com").verdict is KeywordVerdict.BLACKLISTED
    assert rules.matches("secure-login.examplebank.com.evil.example")
    assert rules.matches("examplebank-login.com")


@pytest.mark.parametrize(
    ("search", "threshold", "blacklist", "message"),
    [
        ([""], 2, [], "empty keyword"),
        (["a"], 0, [], "at least 1"),
        (["a"], 1, ["bad\x00"], "control characters"),
        (["a"], 1, ["exa mple.com"], "not a domain name"),
    ],
)
def test_bad_rules_are_refused_with_the_rule_named(
    search: list[str], threshold: int, blacklist: list[str], message: str
) -> None:
    """An empty keyword, a zero threshold or a broken blacklist entry is a clear error."""
    with pytest.raises(ValueError, match=message):
        KeywordRules(search, threshold=threshold, blacklist=blacklist)


_words = st.lists(st.from_regex(r"[a-z]{3,8}", fullmatch=True), min_size=1, max_size=6)


@given(words=_words, name=st.from_regex(r"[a-z0-9.-]{1,60}", fullmatch=True))
def test_the_automaton_agrees_with_a_loop_over_keywords(words: list[str], name: str) -> None:
    """The one-pass automaton finds exactly the keywords a plain substring loop finds."""
    rules = KeywordRules(words, threshold=1, fold_confusables=False)

    expected = {w for w in words if w in name}

    assert set(rules.check(name).keywords) == expected

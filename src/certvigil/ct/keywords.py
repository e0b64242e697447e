"""Keyword rules for CT names: CertStreamMonitor's SearchKeywords, DetectionThreshold, Blacklist.

A name *matches* when it contains at least ``threshold`` distinct search keywords and no
blacklist entry: with ``search = [paypal, login, secure]`` and ``threshold = 2``,
``login-paypal.com`` matches, ``paypal.com`` finds one keyword (below the threshold:
CertStreamMonitor only logs those) and ``www.google.com`` none.

Search keywords are found by one Aho-Corasick automaton (``pyahocorasick``) in one pass
over the name, whatever their number: never a loop over the keywords. By default the
pass runs over the name's confusable skeleton (``ct.skeleton``) with the keywords
folded the same way, so ``paypa1-log1n.com`` and ``paypal`` in Cyrillic letters count too;
``explain`` says which keywords were found only that way. The fold keeps every plain
occurrence (it maps character by character), so nothing is lost by it.

The blacklist is an exemption, so it is read strictly, on the name as written, never
folded. An entry without a dot is a substring, as in CertStreamMonitor (``gouv``); an
entry with a dot is a domain (``examplebank.com``, ``.gouv.fr``) and exempts that name
and the names below it only, so that ``examplebank.com.evil.example`` is not exempt.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

import ahocorasick

from certvigil.ct.names import normalize_name, to_unicode
from certvigil.ct.skeleton import fold_host_name, skeleton


class KeywordVerdict(StrEnum):
    """What the keyword rules make of a name."""

    MATCH = "match"
    BELOW_THRESHOLD = "below-threshold"
    NO_KEYWORD = "no-keyword"
    BLACKLISTED = "blacklisted"


@dataclass(frozen=True, slots=True)
class KeywordResult:
    """The keyword rules applied to one name.

    Attributes:
        name: The name checked (normalised; A-labels).
        verdict: Match, below the threshold, no keyword, or blacklisted (only reported
            when the threshold was reached: a name that would not match is not
            "blacklisted").
        keywords: The distinct search keywords found, in the order of their first
            occurrence.
        confusable: Those of ``keywords`` found only in the folded name (empty when
            folding is off).
        blacklisted_by: The blacklist entries that exempt the name.
        threshold: The threshold in force.
    """

    name: str
    verdict: KeywordVerdict
    keywords: tuple[str, ...]
    confusable: tuple[str, ...]
    blacklisted_by: tuple[str, ...]
    threshold: int

    @property
    def is_match(self) -> bool:
        """Whether the name matches the rules."""
        return self.verdict is KeywordVerdict.MATCH


def _keyword(raw: str, what: str) -> str:
    word = unicodedata.normalize("NFC", raw.strip().lower())
    if not word:
        raise ValueError(f"{what}: an empty keyword matches every name")
    if len(word) > 253:
        raise ValueError(f"{what}: {word[:40]!r}…: longer than a host name can be")
    if not word.isprintable():
        raise ValueError(f"{what}: {word!r}: holds control characters")
    return word


def _automaton(words: Iterable[tuple[str, str]]) -> ahocorasick.Automaton | None:
    automaton = ahocorasick.Automaton()
    for key, value in words:
        if automaton.exists(key):
            continue
        automaton.add_word(key, value)
    if len(automaton) == 0:
        return None
    automaton.make_automaton()
    return automaton


class KeywordRules:
    """Search keywords with a detection threshold and a blacklist.

    Args:
        search: The search keywords (CertStreamMonitor's ``SearchKeywords``).
        threshold: How many distinct keywords a name needs (``DetectionThreshold``,
            default 2 as there).
        blacklist: Entries that exempt a name (``BlacklistKeywords``; see the module
            docstring for substrings and domains).
        fold_confusables: Also find keywords written with look-alike characters.

    Raises:
        ValueError: An empty or unprintable keyword, or a threshold below 1.
    """

    __slots__ = (
        "_blacklist_domains",
        "_blacklist_words",
        "_fold",
        "_plain",
        "_search",
        "blacklist",
        "search",
        "threshold",
    )

    def __init__(
        self,
        search: Iterable[str],
        *,
        threshold: int = 2,
        blacklist: Iterable[str] = (),
        fold_confusables: bool = True,
    ) -> None:
        if threshold < 1:
            raise ValueError(f"threshold: {threshold}: must be at least 1")
        self.search = tuple(dict.fromkeys(_keyword(w, "search keyword") for w in search))
        self.threshold = threshold
        self.blacklist = tuple(dict.fromkeys(_keyword(w, "blacklist keyword") for w in blacklist))
        self._fold = fold_confusables
        # The pass runs over the folded name (or the plain one): keys are folded to match.
        self._search = _automaton(
            ((skeleton(w) if fold_confusables else w), w) for w in self.search
        )
        self._plain = _automaton((w, w) for w in self.search) if fold_confusables else None
        domains: dict[str, str] = {}
        words: list[tuple[str, str]] = []
        for entry in self.blacklist:
            if "." in entry:
                name = normalize_name(entry.lstrip("."))
                if name is None or name.startswith("*"):
                    raise ValueError(f"blacklist keyword: {entry!r}: not a domain name")
                domains[name] = entry
            else:
                words.append((entry, entry))
        self._blacklist_domains = domains
        self._blacklist_words = _automaton(words)

    def _text(self, name: str) -> str:
        text = to_unicode(name) if "xn--" in name else name
        return fold_host_name(text) if self._fold else text

    def _found(self, name: str) -> dict[str, None]:
        if self._search is None:
            return {}
        return {keyword: None for _, keyword in self._search.iter(self._text(name))}

    def _blacklisted_by(self, name: str) -> tuple[str, ...]:
        found: dict[str, None] = {}
        if self._blacklist_words is not None:
            for text in dict.fromkeys((name, to_unicode(name))):
                for _, entry in self._blacklist_words.iter(text):
                    found[entry] = None
        if self._blacklist_domains:
            base = name.removeprefix("*.")
            position = 0
            while True:
                entry = self._blacklist_domains.get(base[position:])
                if entry is not None:
                    found[entry] = None
                position = base.find(".", position) + 1
                if not position:
                    break
        return tuple(found)

    def matches(self, name: str) -> bool:
        """Whether a normalised name matches (the fast path: builds no result)."""
        if self._search is None:
            return False
        found = {keyword for _, keyword in self._search.iter(self._text(name))}
        return len(found) >= self.threshold and not self._blacklisted_by(name)

    def check(self, name: str) -> KeywordResult:
        """The rules applied to a normalised name, with what was found."""
        found = tuple(self._found(name))
        confusable: tuple[str, ...] = ()
        if found and self._plain is not None:
            text = to_unicode(name) if "xn--" in name else name
            plain = {keyword for _, keyword in self._plain.iter(text)}
            confusable = tuple(k for k in found if k not in plain)
        blacklisted_by: tuple[str, ...] = ()
        if not found:
            verdict = KeywordVerdict.NO_KEYWORD
        elif len(found) < self.threshold:
            verdict = KeywordVerdict.BELOW_THRESHOLD
        else:
            blacklisted_by = self._blacklisted_by(name)
            verdict = KeywordVerdict.BLACKLISTED if blacklisted_by else KeywordVerdict.MATCH
        return KeywordResult(name, verdict, found, confusable, blacklisted_by, self.threshold)

    def explain(self, name: str) -> str:
        """Why a normalised name matches the rules or not, in one sentence.

        The text holds the name and keywords as given: escape it before showing it.
        """
        result = self.check(name)
        shown = [f"{k} (as a look-alike)" if k in result.confusable else k for k in result.keywords]
        listed = ", ".join(shown)
        need = f"threshold {result.threshold}"
        if result.verdict is KeywordVerdict.NO_KEYWORD:
            return f"no match: none of the {len(self.search)} search keywords occurs"
        count = f"{len(result.keywords)} keyword{'s' if len(result.keywords) != 1 else ''}"
        if result.verdict is KeywordVerdict.BELOW_THRESHOLD:
            return f"no match: {count} found ({listed}), below the {need}"
        if result.verdict is KeywordVerdict.BLACKLISTED:
            entries = ", ".join(result.blacklisted_by)
            return f"no match: {count} found ({listed}), but blacklisted by {entries}"
        return f"match: {count} found ({listed}), {need} reached"

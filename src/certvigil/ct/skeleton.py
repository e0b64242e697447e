"""Confusable folding: the UTS #39 skeleton of a host name, case-insensitive.

Two names that look alike on screen (``example.com`` with a Cyrillic ``a``, U+0430,
``examp1e.com``, ``rnodern.com`` for ``modern.com``) have the same skeleton. UTS #39
defines it as NFD, then every character replaced by its *prototype* from the Unicode
``confusables.txt`` table, then NFD again. Host names are compared without case, so the
prototypes are lower-cased and mapped again until nothing changes (``0`` → ``O`` →
``o``), and combining marks are dropped (``exämple`` folds like ``example``): a
diacritic is easy to miss in an address bar, and registries sell such names.

The table comes from the ``confusable_homoglyphs`` package, which ships Unicode's
``confusables.txt`` as JSON in both directions (each prototype lists its sources, each
source lists its prototype). The direction is read back here: a multi-character entry is
a prototype (sources are single code points), a character listing several others is a
prototype, and a character that lists one other is its source. Where two characters
list only each other, either can be the prototype; the ASCII one (else the lower code
point) is taken, which gives the same classes.

Folding an ASCII host name costs three ``str.replace`` (only ``0``, ``1`` and ``m`` → ``rn``
change); a name with non-ASCII characters adds an NFD and a filter.
"""

from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from importlib import resources

_DIRECTION_MARKS = str.maketrans("", "", "\u200e\u200f")
# A host name is dot-separated labels of letters, digits and hyphens: these keep their
# meaning so the folded name still splits into the same labels.
_KEEP = frozenset(".-")
_HOST_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_*")


def _load_pairs() -> dict[str, list[str]]:
    raw = resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text("utf-8")
    table: dict[str, list[dict[str, str]]] = json.loads(raw)
    pairs: dict[str, list[str]] = {}
    for key, entries in table.items():
        clean_key = key.translate(_DIRECTION_MARKS)
        values = [entry["c"].translate(_DIRECTION_MARKS) for entry in entries]
        if clean_key:
            pairs[clean_key] = [value for value in values if value]
    return pairs


def _preferred(a: str, b: str) -> str:
    return min((a, b), key=lambda c: (not c.isascii(), c))


def _prototypes(pairs: dict[str, list[str]]) -> dict[str, str]:
    """Each single character that is not its own prototype, mapped to its prototype."""
    mapping: dict[str, str] = {}
    for key, values in pairs.items():
        if len(key) != 1 or len(values) != 1:
            continue
        value = values[0]
        if value == key:
            continue
        back = pairs.get(value)
        if len(value) > 1 or back is None or len(back) > 1 or back != [key]:
            mapping[key] = value
        elif _preferred(key, value) == value:
            mapping[key] = value
    return mapping


def _fold_once(text: str, mapping: dict[str, str]) -> str:
    text = unicodedata.normalize("NFD", text.lower())
    out = "".join(c if c in _KEEP else mapping.get(c, c) for c in text)
    return "".join(c for c in unicodedata.normalize("NFD", out) if not unicodedata.combining(c))


@lru_cache(maxsize=1)
def _tables() -> tuple[dict[int, str], tuple[tuple[str, str], ...], dict[int, str]]:
    """The folding tables.

    Returns:
        (every character that folds → its folded text, for ``str.translate``; the pairs
        for the characters a normalised host name can hold (``0``, ``1``, ``m``), for
        ``str.replace``, which is several times faster than ``translate`` when the
        table maps to multi-character strings; the other ASCII characters that fold).
    """
    mapping = _prototypes(_load_pairs())
    full: dict[int, str] = {}
    candidates = set(mapping) | {chr(c) for c in range(0x21, 0x7F)}
    for char in candidates:
        if char in _KEEP:
            continue
        folded = char
        for _ in range(8):
            again = _fold_once(folded, mapping)
            if again == folded:
                break
            folded = again
        if folded != char:
            full[ord(char)] = folded
    host = tuple(
        (chr(code), text) for code, text in sorted(full.items()) if chr(code) in _HOST_CHARS
    )
    other_ascii = {code: text for code, text in full.items() if code < 0x80}
    for char, _ in host:
        del other_ascii[ord(char)]
    return full, host, other_ascii


# Upper case is lowered first, so only these ASCII characters need the translate table.
_OTHER_ASCII = (
    frozenset(chr(c) for c in range(0x21, 0x7F))
    - _HOST_CHARS
    - _KEEP
    - frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
)


def skeleton(name: str) -> str:
    """The case-insensitive confusable skeleton of ``name`` (see the module docstring).

    Args:
        name: A host name or label in Unicode form (U-labels, not ``xn--``).

    Returns:
        The folded text; dots and hyphens stay where they were.
    """
    full, host, other_ascii = _tables()
    if name.isascii():
        text = name.lower()
        for char, folded in host:
            if char in text:
                text = text.replace(char, folded)
        if not _OTHER_ASCII.isdisjoint(text):
            text = text.translate(other_ascii)
        return text
    text = unicodedata.normalize("NFD", name.lower()).translate(full)
    text = unicodedata.normalize("NFD", text)
    return "".join(c for c in text if not unicodedata.combining(c))


def fold_host_name(name: str) -> str:
    """``skeleton`` of a normalised host name (lower case; A-labels or U-labels), faster.

    A normalised ASCII name holds only letters, digits, ``-``, ``_``, ``*`` and dots,
    of which only ``0``, ``1`` and ``m`` fold: three ``str.replace`` do it.
    """
    if not name.isascii():
        return skeleton(name)
    for char, folded in _tables()[1]:
        if char in name:
            name = name.replace(char, folded)
    return name


def changes_ascii() -> frozenset[str]:
    """The ASCII characters that folding changes (for explanations and tests)."""
    full = _tables()[0]
    return frozenset(chr(code) for code in full if code < 0x80)

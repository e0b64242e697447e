"""Outside text written visibly: control, format and bidi characters as escapes; pure.

Kept apart from ``output/safe_text.py`` (which adds rich, JSON and CSV helpers) so that
error messages, the probes and the analysis can use it without importing rich.
"""

from __future__ import annotations

import unicodedata

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# Categories shown as escapes: controls (C0, DEL, C1), format characters (bidi
# embeddings, overrides and isolates, zero-width space and joiners, the BOM, soft
# hyphen, tag characters), line and paragraph separators, lone surrogates (which
# cannot even be encoded) and unassigned code points (which a newer terminal may
# treat as any of these).
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Cn"})


def _escape(char: str) -> str:
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    point = ord(char)
    if point < 0x100:
        return f"\\x{point:02x}"
    if point < 0x10000:
        return f"\\u{point:04x}"
    return f"\\U{point:08x}"


def is_hidden(char: str) -> bool:
    """Whether ``char`` would act on a terminal or hide itself instead of showing.

    Args:
        char: One character.

    Returns:
        True for controls (C0, DEL, C1), format characters (bidi controls, zero-width
        characters, U+FEFF, tags), line/paragraph separators, surrogates and
        unassigned code points.
    """
    return unicodedata.category(char) in _HIDDEN_CATEGORIES


def visible(text: str) -> str:
    """``text`` with every hidden or controlling character written as an escape.

    Args:
        text: Text from outside (a certificate field, a server's message, a name).

    Returns:
        The same text where it is printable; ``ESC`` becomes ``\\x1b``, a newline
        ``\\n``, U+202E ``\\u202e``. Plain text comes back unchanged (the same object).
    """
    if text.isprintable():
        # Fast path; isprintable() is also False for spaces other than " ", which are
        # kept below.
        return text
    return "".join(_escape(c) if is_hidden(c) else c for c in text)

"""The finding-code table of ``docs/finding-codes.md``, made from ``analysis.codes``."""

from __future__ import annotations

from pathlib import Path

from certvigil.analysis.codes import CODE_DOCS

__all__ = ["finding_codes_markdown"]

_HEADER = """# Finding codes

Every finding certvigil reports has one of these codes (`certvigil.analysis.codes.FindingCode`).
The JSON documents, the store, the alert rules and the grade refer to them by these
strings; new codes may appear in any release, so treat a code you do not know by its
`severity`. Severities are those of the default policy; `--threshold` and the
configuration's `thresholds` change which expiry distance is reported.
This file is generated: `python -m certvigil.output.finding_codes docs/finding-codes.md`.

| code | severity | meaning | what to do |
| --- | --- | --- | --- |
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def finding_codes_markdown() -> str:
    """The whole Markdown file: a short introduction and one row per code."""
    rows = [
        f"| `{code}` | {_cell(doc.severity)} | {_cell(doc.meaning)} | {_cell(doc.action)} |\n"
        for code, doc in CODE_DOCS.items()
    ]
    return _HEADER + "".join(rows)


if __name__ == "__main__":
    import sys

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/finding-codes.md")
    target.write_text(finding_codes_markdown(), encoding="utf-8")
    print(target)

"""Finding codes: one enumeration, each emitted somewhere, each documented, each rule real."""

from __future__ import annotations

import ast
from pathlib import Path

import certvigil
from certvigil.alerts.rules import DEFAULT_WEAK_CODES, AlertPolicy
from certvigil.analysis.codes import CODE_DOCS, FindingCode
from certvigil.output.finding_codes import finding_codes_markdown

PACKAGE = Path(certvigil.__file__).parent
DOC = PACKAGE.parents[1] / "docs" / "finding-codes.md"
# Where findings are made: pure analysis, and the scan's own notes until judge owns them.
EMITTING = ("analysis", "scan")


def _code_references(text: str) -> set[str]:
    """The FindingCode members a module's source names (``FindingCode.EXPIRED``)."""
    return {
        node.attr
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "FindingCode"
    }


def _makes_findings(text: str) -> bool:
    return any(
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Finding"
        for node in ast.walk(ast.parse(text))
    )


def emitted_codes(roots: tuple[Path, ...]) -> set[str]:
    """The codes named by modules under ``roots`` that build ``Finding`` objects."""
    emitted: set[str] = set()
    for root in roots:
        for path in root.rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            if _makes_findings(text):
                emitted |= {FindingCode[name].value for name in _code_references(text)}
    return emitted


EMITTED = emitted_codes(tuple(PACKAGE / name for name in EMITTING))


def test_every_code_is_emitted_by_some_analysis() -> None:
    """No member is dead: each is named where findings are made."""
    assert set(FindingCode) - EMITTED == set()


def test_rules_and_policies_refer_only_to_emitted_codes() -> None:
    """The alert policy's weak and revoked codes are codes an analysis can emit."""
    policy = AlertPolicy()

    assert DEFAULT_WEAK_CODES <= EMITTED
    assert policy.weak_finding_codes <= EMITTED
    assert policy.revoked_finding_codes <= EMITTED


def test_every_module_names_only_emitted_codes() -> None:
    """Outputs, rules, integrations and the grade name no code that is never emitted."""
    for path in sorted(PACKAGE.rglob("*.py")):
        named = {FindingCode[name].value for name in _code_references(path.read_text())}
        assert named <= EMITTED, f"{path.relative_to(PACKAGE)} names {sorted(named - EMITTED)}"


def test_the_check_finds_a_code_no_analysis_emits(tmp_path: Path) -> None:
    """A rule naming a code that only a non-emitting module mentions is caught."""
    (tmp_path / "analysis.py").write_text(
        "Finding(code=FindingCode.EXPIRED, severity=s, message='m')\n"
    )
    (tmp_path / "rule.py").write_text("WATCH = {FindingCode.HEARTBLEED}\n")

    assert emitted_codes((tmp_path,)) == {"expired"}
    assert _code_references((tmp_path / "rule.py").read_text()) - {"EXPIRED"} == {"HEARTBLEED"}


def test_every_code_is_documented_and_the_table_is_current() -> None:
    """Each member has its row; docs/finding-codes.md is the table the enumeration makes
    (after a change run ``python -m certvigil.output.finding_codes``)."""
    assert set(CODE_DOCS) == set(FindingCode)
    assert all(doc.severity and doc.meaning and doc.action for doc in CODE_DOCS.values())
    assert DOC.read_text(encoding="utf-8") == finding_codes_markdown()

"""The ``checks:`` settings: defaults, the written forms, per-target overrides, and
mistakes reported at their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from certvigil.config import load_config
from certvigil.config.checks import DEFAULT_CHECKS, CheckName, schedule_of
from certvigil.config.expand import expand_targets
from certvigil.errors import ConfigError


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "certvigil.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_defaults_check_certificate_and_revocation_every_scan_protocols_daily() -> None:
    """Without ``checks:`` the certificate and revocation run on every scan (no interval
    of their own), protocols and grade once a day spread over an hour."""
    assert DEFAULT_CHECKS.cert.interval_s is None and DEFAULT_CHECKS.cert.enabled
    assert DEFAULT_CHECKS.revocation.interval_s is None and DEFAULT_CHECKS.revocation.enabled
    for name in (CheckName.PROTOCOLS, CheckName.GRADE):
        schedule = schedule_of(DEFAULT_CHECKS, name)
        assert (schedule.interval_s, schedule.jitter_s) == (86400, 3600)


def test_written_forms_and_a_target_override(tmp_path: Path) -> None:
    """A mapping, a bare interval and ``false`` all read; a target's ``checks:`` replaces
    the global setting of the checks it names and keeps the others."""
    loaded = _load(
        tmp_path,
        "checks:\n"
        "  revocation: false\n"
        "  protocols: 12h\n"
        "  grade: {interval: 2d, jitter: 30m}\n"
        "targets:\n"
        "  - host: a.example.org\n"
        "  - host: b.example.org\n"
        "    checks: {revocation: true, grade: 7d}\n",
    )
    checks = loaded.config.checks
    assert not checks.revocation.enabled
    assert checks.protocols.interval_s == 43200
    assert (checks.grade.interval_s, checks.grade.jitter_s) == (172800, 1800)
    a, b = expand_targets(loaded).targets
    assert a.checks == checks
    assert b.checks.revocation.enabled and b.checks.revocation.interval_s is None
    assert b.checks.grade.interval_s == 7 * 86400 and b.checks.grade.jitter_s == 0
    assert b.checks.protocols == checks.protocols


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("checks:\n  cert: false\n", 1, "cert cannot be switched off"),
        ("checks:\n  protocols: 0.5s\n", 2, "greater than or equal to 1"),
        ("checks:\n  grade: {interval: 1d, jitter: -5}\n", 2, "greater than zero"),
        ("checks:\n  grade: {every: 1d}\n", 2, "every"),
        ("checks:\n  ciphers: 1d\n", 2, "ciphers"),
        ("targets:\n  - host: a.example\n    checks: {cert: false}\n", 3, "cert cannot"),
    ],
)
def test_mistakes_are_config_errors_at_their_line(
    tmp_path: Path, text: str, line: int, words: str
) -> None:
    """Each mistake in ``checks:`` is a ConfigError naming the file and line."""
    with pytest.raises(ConfigError) as raised:
        _load(tmp_path, text)
    assert raised.value.line == line, str(raised.value)
    assert words in str(raised.value)
    assert "certvigil.yaml" in str(raised.value)

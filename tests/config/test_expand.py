"""Expanding a configuration's targets and sources into scheduled endpoints."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from certvigil.config import load_config
from certvigil.config.expand import expand_targets
from certvigil.errors import ConfigError
from certvigil.targets.target import StartTLS, Target

DATA = Path(__file__).parent.parent / "data" / "dns"


def load(tmp_path: Path, text: str):
    path = tmp_path / "certvigil.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_targets_expand_with_their_overrides(tmp_path: Path) -> None:
    """CIDR blocks, port lists and STARTTLS entries become endpoints with their settings."""
    loaded = load(
        tmp_path,
        """\
scan: {interval: 1h, timeout: 7}
alerts: {thresholds: [21]}
targets:
  - host: 127.0.0.0/30
    port: 8443
  - host: localhost
    ports: [443, 8443]
    tags: [web]
    interval: 5m
    thresholds: ["10%"]
  - host: localhost
    port: 443
    tags: [prod]
  - host: 127.0.0.1
    starttls: smtp
    sni: mail.example.org
""",
    )
    expanded = {s.target: s for s in expand_targets(loaded).targets}
    assert list(expanded) == [
        Target(host="127.0.0.1", port=8443),
        Target(host="127.0.0.2", port=8443),
        Target(host="localhost", port=443),
        Target(host="localhost", port=8443),
        Target(host="127.0.0.1", port=25, sni="mail.example.org", starttls=StartTLS.SMTP),
    ]
    web = expanded[Target(host="localhost", port=443)]
    assert web.tags == ("web", "prod")
    assert web.interval_s == 300
    assert [t.label for t in web.thresholds] == ["10%"]
    block = expanded[Target(host="127.0.0.1", port=8443)]
    assert (block.interval_s, block.timeout_s) == (3600, 7)
    assert [t.days for t in block.thresholds] == [21]


def test_sources_are_read_relative_to_the_config_file(tmp_path: Path) -> None:
    """Zone files, CSV exports and target files named by relative paths are found."""
    shutil.copytree(DATA / "bind-ocf", tmp_path / "bind-ocf")
    shutil.copy(DATA / "octodns" / "unit.tests.DERIVED.csv", tmp_path / "unit.tests.csv")
    (tmp_path / "hosts.txt").write_text("# comment\n127.0.0.1:8443\n[::1]\n", encoding="utf-8")
    loaded = load(
        tmp_path,
        """\
sources:
  - type: zone_file
    path: bind-ocf/zones/db.cal.fyi
    wildcard_label: star
    tags: [ocf]
  - type: octodns_csv
    path: unit.tests.csv
    include: ["*unit.tests"]
    exclude: ["excluded.*", "ignored.*"]
    ports: [443, 993]
  - type: target_file
    path: hosts.txt
""",
    )
    expanded = expand_targets(loaded).targets
    endpoints = [str(s.target) for s in expanded]
    assert endpoints[:2] == ["cal.fyi:443", "star.cal.fyi:443"]
    assert "www.unit.tests:993" in endpoints
    assert not any(e.startswith(("excluded.", "ignored.")) for e in endpoints)
    assert endpoints[-2:] == ["127.0.0.1:8443", "[::1]:443"]
    assert expanded[0].tags == ("ocf",)


def test_unreadable_sources_and_large_blocks_are_all_reported(tmp_path: Path) -> None:
    """Each source that fails and each oversized block is a problem naming field and line."""
    (tmp_path / "hosts.txt").write_text("good.example.org\nbad host!\n", encoding="utf-8")
    loaded = load(
        tmp_path,
        """\
targets:
  - host: 10.0.0.0/8
sources:
  - type: zone_file
    path: missing.zone
  - type: target_file
    path: hosts.txt
""",
    )
    with pytest.raises(ConfigError) as info:
        expand_targets(loaded)
    problems = info.value.problems
    assert [(p.location, p.line) for p in problems] == [
        ("targets[0]", 2),
        ("sources[0].path", 5),
        ("sources[1].path", 7),
    ]
    assert "larger than /16" in problems[0].reason
    assert "missing.zone" in problems[1].reason
    assert "hosts.txt:2" in problems[2].reason


def test_large_blocks_pass_when_allowed(tmp_path: Path) -> None:
    """allow_large_cidr lets a /15 through."""
    loaded = load(tmp_path, "scan: {allow_large_cidr: true}\ntargets: [{host: 127.0.0.0/15}]\n")
    assert len(expand_targets(loaded).targets) == 2**17 - 2

"""Loading configurations in YAML, TOML and JSON, and errors that name field and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from certvigil.config import Threshold, load_config
from certvigil.errors import ConfigError

SEED_000_JSON = """{
"api_key": "YOUR_API_KEY_HERE",
"api_endpoint": "https://www.dnsscience.io/api/sslscout/report",
"scan_interval": 3600,
"targets": [
{"host": "internal-app.example.com", "port": 443},
{"host": "192.168.1.100", "port": 8443},
{"host": "10.0.0.0/24", "port": 443}
],
"alert_days_before_expiry": [30, 14, 7, 1],
"log_file": "/var/log/dnsscience_sslscout.log",
"websocket_alerts": true,
"timeout": 10
}
"""

SAME_YAML = """\
database_url: sqlite:///inventory.db
scan:
  interval: 1h30m
  jitter: 0
  timeout: 5s
alerts:
  thresholds: [30, "14d", "20%"]
  routes:
    - url: json://127.0.0.1:8080/hook
      min_severity: critical
      tags: [prod]
targets:
  - host: www.example.org
    ports: [443, 8443]
    tags: [prod]
  - host: mail.example.org
    starttls: smtp
    interval: 15m
"""

SAME_TOML = """\
database_url = "sqlite:///inventory.db"

[scan]
interval = "1h30m"
jitter = 0
timeout = "5s"

[alerts]
thresholds = [30, "14d", "20%"]

[[alerts.routes]]
url = "json://127.0.0.1:8080/hook"
min_severity = "critical"
tags = ["prod"]

[[targets]]
host = "www.example.org"
ports = [443, 8443]
tags = ["prod"]

[[targets]]
host = "mail.example.org"
starttls = "smtp"
interval = "15m"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[ConfigError]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return list(info.value.problems) or [info.value]


def test_seed_000_json_loads_onto_certvigil_names(tmp_path: Path) -> None:
    """An SSL Scout JSON configuration loads, its keys read as certvigil's own."""
    loaded = load_config(write(tmp_path, "sslscout.json", SEED_000_JSON))
    config = loaded.config
    assert config.scan.interval_s == 3600
    assert config.scan.timeout_s == 10
    assert [t.days for t in config.alerts.thresholds] == [30, 14, 7, 1]
    assert config.logging.file == Path("/var/log/dnsscience_sslscout.log")
    assert [(t.host, t.port_list) for t in config.targets] == [
        ("internal-app.example.com", (443,)),
        ("192.168.1.100", (8443,)),
        ("10.0.0.0/24", (443,)),
    ]


def test_seed_000_foreign_keys_are_noted_with_their_lines(tmp_path: Path) -> None:
    """api_key and api_endpoint become the agent's server link, websocket_alerts is
    accepted and ignored; each with a note naming the line."""
    path = write(tmp_path, "sslscout.json", SEED_000_JSON)
    loaded = load_config(path)
    notes = loaded.notes
    assert any(n.startswith(f"{path}:2: api_key: read as server.key") for n in notes)
    assert any(n.startswith(f"{path}:3: api_endpoint: read as server.url") for n in notes)
    assert loaded.config.server is not None
    assert loaded.config.server.url == "https://www.dnsscience.io/api/sslscout/report"
    assert any(n.startswith(f"{path}:12: websocket_alerts:") for n in notes)


def test_unknown_key_is_an_error_naming_it(tmp_path: Path) -> None:
    """A key no one knows is refused, naming it and its line."""
    text = SEED_000_JSON.replace('"timeout": 10', '"timeout": 10,\n"colour": "red"')
    path = write(tmp_path, "sslscout.json", text)
    (problem,) = problems_of(path)
    assert problem.location == "colour"
    assert problem.line == 14
    assert str(problem) == f"{path}:14: colour: unknown field"


def test_seed_key_set_twice_is_an_error(tmp_path: Path) -> None:
    """scan_interval next to scan.interval is refused rather than one silently winning."""
    data = {"scan_interval": 60, "scan": {"interval": "2m"}}
    path = write(tmp_path, "c.json", json.dumps(data, indent=1))
    (problem,) = problems_of(path)
    assert problem.location == "scan_interval"
    assert "set twice" in problem.reason


def test_yaml_toml_and_json_give_the_same_configuration(tmp_path: Path) -> None:
    """One configuration written in the three formats validates to equal models."""
    from_yaml = load_config(write(tmp_path, "c.yaml", SAME_YAML)).config
    from_toml = load_config(write(tmp_path, "c.toml", SAME_TOML)).config
    import yaml

    as_json = json.dumps(yaml.safe_load(SAME_YAML), indent=2)
    from_json = load_config(write(tmp_path, "c.json", as_json)).config
    assert from_yaml == from_toml == from_json
    assert from_yaml.scan.interval_s == 5400
    assert from_yaml.scan.jitter_s == 0
    assert from_yaml.alerts.thresholds == (
        Threshold(days=30),
        Threshold(days=14),
        Threshold(lifetime_fraction=0.2),
    )
    assert from_yaml.targets[1].port_list == (25,)
    assert from_yaml.targets[1].interval_s == 900


BAD_YAML = """\
database_url: sqlite:///x.db
scan:
  interval: 1x
targets:
  - host: a.example.org
  - host: b.example.org
    port: 70000
  - host: c.example.org
    starttls: smtps
alerts:
  thresholds: [30, "abc"]
"""


def test_yaml_errors_name_every_field_and_line(tmp_path: Path) -> None:
    """Every mistake in a YAML file is reported with its field path and line."""
    path = write(tmp_path, "certvigil.yaml", BAD_YAML)
    problems = problems_of(path)
    located = [(p.line, p.location) for p in problems]
    assert located == [
        (3, "scan.interval"),
        (7, "targets[1].port"),
        (9, "targets[2].starttls"),
        (11, "alerts.thresholds[1]"),
    ]
    assert str(problems[1]) == f"{path}:7: targets[1].port: must be 1..65535"


def test_toml_errors_locate_the_key(tmp_path: Path) -> None:
    """A TOML mistake names the field and the line of its key."""
    text = SAME_TOML.replace("ports = [443, 8443]", "ports = [443, 0]").replace(
        'starttls = "smtp"', 'starttls = "gopher"'
    )
    path = write(tmp_path, "c.toml", text)
    problems = problems_of(path)
    assert [(p.line, p.location) for p in problems] == [
        (18, "targets[0].ports[1]"),
        (23, "targets[1].starttls"),
    ]


def test_json_errors_name_field_and_line(tmp_path: Path) -> None:
    """A JSON mistake names the field and its line."""
    text = SEED_000_JSON.replace('"port": 8443', '"port": "eighty"')
    path = write(tmp_path, "c.json", text)
    (problem,) = problems_of(path)
    assert (problem.line, problem.location) == (7, "targets[1].port")


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        ("c.yaml", "scan:\n  interval: 1h\n targets: [\n", 3),
        ("c.toml", 'database_url = "x://y"\n[scan\n', 2),
        ("c.json", '{\n"scan_interval": 1,\n}\n', 3),
    ],
)
def test_syntax_errors_give_a_line(tmp_path: Path, name: str, text: str, line: int) -> None:
    """A file that does not parse is refused with the line of the syntax error."""
    (problem,) = problems_of(write(tmp_path, name, text))
    assert problem.line == line
    assert "not valid" in problem.reason


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    """A file whose suffix names no known format is refused, naming the suffix."""
    (problem,) = problems_of(write(tmp_path, "c.ini", "[x]\n"))
    assert ".ini" in problem.reason


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    """A YAML list at the top level is refused."""
    (problem,) = problems_of(write(tmp_path, "c.yaml", "- a\n- b\n"))
    assert "mapping" in problem.reason


def test_empty_file_gives_the_defaults(tmp_path: Path) -> None:
    """An empty YAML file is a valid configuration with every default."""
    config = load_config(write(tmp_path, "c.yaml", "")).config
    assert config.scan.interval_s == 3600
    assert [t.days for t in config.alerts.thresholds] == [30, 14, 7, 1]
    assert config.targets == ()


def test_cidr_and_host_checks(tmp_path: Path) -> None:
    """A malformed CIDR block and a host with spaces are refused at their lines."""
    text = "targets:\n  - host: 10.0.0.0/33\n  - host: exa mple.org\n"
    problems = problems_of(write(tmp_path, "c.yaml", text))
    assert [(p.line, p.location) for p in problems] == [(2, "targets[0]"), (3, "targets[1]")]
    assert "CIDR" in problems[0].reason


def test_scan_time_outs_match_the_command_line(tmp_path: Path) -> None:
    """The daemon's time-out defaults are the command line's; deadline and retry_timeouts load."""
    defaults = load_config(write(tmp_path, "empty.yaml", "targets: []\n")).config.scan
    assert (defaults.timeout_s, defaults.deadline_s, defaults.retry_timeouts) == (5, 30, False)
    text = "scan: {timeout: 3s, deadline: 12s, retry_timeouts: true}\n"
    scan = load_config(write(tmp_path, "scan.yaml", text)).config.scan
    assert (scan.timeout_s, scan.deadline_s, scan.retry_timeouts) == (3, 12, True)

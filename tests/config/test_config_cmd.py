"""``certvigil config init`` and ``certvigil config check`` on real files."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from certvigil.cli.app import app, register_commands
from certvigil.config import load_config
from certvigil.config.sample import SAMPLE_YAML

register_commands([])  # every command module, so that ``app`` knows them all
runner = CliRunner()


def test_init_writes_a_sample_that_passes_check(tmp_path: Path) -> None:
    """The sample written by ``config init`` passes ``config check`` with a summary."""
    path = tmp_path / "certvigil.yaml"
    result = runner.invoke(app, ["config", "init", str(path)])
    assert result.exit_code == 0, result.output
    assert path.read_text(encoding="utf-8") == SAMPLE_YAML
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 0, result.stderr
    assert f"{path}: valid (yaml)" in result.stdout
    assert "www.example.org:8443" in result.stdout
    assert "mail.example.org:25 (starttls smtp)" in result.stdout


def test_sample_is_commented_and_resolves_its_database_beside_itself(tmp_path: Path) -> None:
    """Every section of the sample is explained, and its SQLite file sits beside it."""
    path = tmp_path / "c.yaml"
    path.write_text(SAMPLE_YAML, encoding="utf-8")
    for section in ("scan:", "trust:", "alerts:", "logging:", "targets:", "sources:"):
        before = SAMPLE_YAML.split(f"\n{section}")[0].rstrip().splitlines()
        assert before[-1].startswith("#") or "#" in before[-1], section
    assert load_config(path).database_url == str(tmp_path / "certvigil.db")


def test_init_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    """An existing file is kept unless --force is given."""
    path = tmp_path / "certvigil.yaml"
    path.write_text("keep: me\n", encoding="utf-8")
    result = runner.invoke(app, ["config", "init", str(path)])
    assert result.exit_code == 64
    assert path.read_text(encoding="utf-8") == "keep: me\n"
    assert runner.invoke(app, ["config", "init", str(path), "--force"]).exit_code == 0


def test_init_without_path_prints_the_sample() -> None:
    """``config init`` with no path writes the sample to stdout."""
    result = runner.invoke(app, ["config", "init"])
    assert result.exit_code == 0
    assert result.stdout == SAMPLE_YAML


def test_check_lists_every_mistake_and_exits_64(tmp_path: Path) -> None:
    """Each mistake is one error line with file, line and field; the exit code is 64."""
    path = tmp_path / "certvigil.yaml"
    path.write_text(
        "targets:\n  - host: a.example.org\n    port: 0\n  - host: b.example.org\n"
        "    colour: red\nsources:\n  - type: zone_file\n    path: missing.zone\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 64
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: {path}:3: targets[0].port: must be 1..65535",
        f"error: {path}:5: targets[1].colour: unknown field",
    ]
    # Sources are read only once the file itself is valid.
    path.write_text("sources:\n  - type: zone_file\n    path: missing.zone\n", encoding="utf-8")
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 64
    assert f"error: {path}:3: sources[0].path: " in result.stderr
    assert "missing.zone" in result.stderr
    assert result.stdout == ""


def test_check_notes_seed_000_foreign_keys(tmp_path: Path) -> None:
    """An SSL Scout JSON file passes with notes about the keys it renames."""
    path = tmp_path / "sslscout.json"
    path.write_text(
        '{\n"api_key": "K",\n"targets": [{"host": "127.0.0.0/29", "port": 443}],\n'
        '"scan_interval": 600\n}\n',
        encoding="utf-8",
    )
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 0
    assert f"note: {path}:2: api_key: read as server.key" in result.stderr
    assert "endpoints: 6 on 6 hosts" in result.stdout
    assert "every 10m" in result.stdout


def test_contrib_example_passes_check() -> None:
    """The example shipped for the systemd unit is a valid configuration."""
    path = Path(__file__).parents[2] / "contrib" / "certvigil.yaml"
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "database: /var/lib/certvigil/certvigil.db\n" in result.stdout


def test_check_reports_unusable_ca_files_at_their_field(tmp_path: Path) -> None:
    """A CA file that is missing or holds no certificate is named with its field and line."""
    (tmp_path / "not-a-cert.pem").write_text("hello\n", encoding="utf-8")
    path = tmp_path / "certvigil.yaml"
    path.write_text(
        "trust:\n  ca_files: [missing.pem]\ntargets:\n  - host: localhost\n"
        "    trust:\n      public: false\n      ca_files:\n        - not-a-cert.pem\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["config", "check", str(path)])
    assert result.exit_code == 64
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 2
    assert errors[0].startswith(f"error: {path}:2: trust.ca_files[0]: ")
    assert "missing.pem" in errors[0]
    assert errors[1].startswith(f"error: {path}:8: targets[0].trust.ca_files[0]: ")
    assert "not-a-cert.pem" in errors[1]

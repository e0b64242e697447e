"""One database wherever you stand: how every command finds its configuration and database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certvigil.cli.app import main
from certvigil.cli.exitcodes import ExitCode
from certvigil.config.discovery import CONFIG_ENV, find_config
from certvigil.errors import ConfigError, UsageError
from certvigil.store import open_store
from certvigil.store.engine import DATABASE_URL_ENV
from certvigil.targets.target import Target
from tests.store.factories import facts, ok_report

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No configuration or database from the machine running the tests leaks in."""
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 0), out, err


def _record(database: Path) -> None:
    target = Target(host="www.example.test", port=443)
    leaf = facts("www.example.test", not_after_utc=NOW + timedelta(days=3))
    with open_store(str(database)) as store:
        store.record_report(ok_report(target, (leaf,), at=NOW - timedelta(hours=1)))


def test_config_is_found_by_the_documented_order(tmp_path: Path) -> None:
    """-c wins, then $CERTVIGIL_CONFIG, then ./certvigil.yaml, then the XDG directory."""
    cwd, xdg = tmp_path / "cwd", tmp_path / "xdg-config" / "certvigil"
    cwd.mkdir()
    xdg.mkdir(parents=True)
    (xdg / "certvigil.toml").write_text("")
    env = {"XDG_CONFIG_HOME": str(tmp_path / "xdg-config")}
    assert find_config(None, environ=env, cwd=cwd).path == xdg / "certvigil.toml"
    (cwd / "certvigil.yaml").write_text("")
    assert find_config(None, environ=env, cwd=cwd).path == cwd / "certvigil.yaml"
    named = tmp_path / "named.yaml"
    named.write_text("")
    env[CONFIG_ENV] = str(named)
    assert find_config(None, environ=env, cwd=cwd).path == named
    assert find_config(Path("x.yaml"), environ=env, cwd=cwd).path == Path("x.yaml")


def test_a_missing_config_named_by_the_environment_is_an_error(tmp_path: Path) -> None:
    """$CERTVIGIL_CONFIG naming no file is a ConfigError, not a silent fall-back."""
    with pytest.raises(ConfigError, match="no such file"):
        find_config(None, environ={CONFIG_ENV: str(tmp_path / "none.yaml")}, cwd=tmp_path)


def test_two_candidates_in_one_directory_are_an_error(tmp_path: Path) -> None:
    """certvigil.yaml beside certvigil.toml is refused: either could be meant."""
    (tmp_path / "certvigil.yaml").write_text("")
    (tmp_path / "certvigil.toml").write_text("")
    with pytest.raises(UsageError, match="both exist"):
        find_config(None, environ={}, cwd=tmp_path)


def test_store_commands_without_c_read_the_database_of_certvigil_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In the directory of the sample configuration, inventory, history, changes, where
    and alerts read the database it names (relative to it), as the README shows."""
    (tmp_path / "certvigil.yaml").write_text("database_url: certvigil.db\n")
    _record(tmp_path / "certvigil.db")
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(["inventory"], capsys)
    assert code == ExitCode.OK, err
    assert "www.example.test" in out
    assert f"1 certificate in {tmp_path / 'certvigil.db'}" in err
    for argv in (
        ["history", "www.example.test:443", "--json"],
        ["changes", "--since", "7d", "--json"],
        ["alerts", "list", "--json"],
    ):
        code, out, err = _run(argv, capsys)
        assert code in (ExitCode.OK, ExitCode.WARNING), (argv, err)
        json.loads(out)


def test_certvigil_config_names_the_database_from_anywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """$CERTVIGIL_CONFIG is read from any directory; its relative database is beside it."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "c.yaml").write_text("database_url: inv.db\n")
    _record(etc / "inv.db")
    monkeypatch.setenv(CONFIG_ENV, str(etc / "c.yaml"))
    monkeypatch.chdir(tmp_path)
    code, _out, err = _run(["inventory"], capsys)
    assert code == ExitCode.OK, err
    assert f"1 certificate in {etc / 'inv.db'}" in err


def test_run_finds_certvigil_yaml_and_logs_its_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """run without -c reads ./certvigil.yaml and its start-up line names the database."""
    (tmp_path / "certvigil.yaml").write_text("database_url: certvigil.db\n")
    monkeypatch.chdir(tmp_path)
    code, _out, err = _run(["run", "--once"], capsys)
    assert code == ExitCode.OK, err
    assert f"certvigil starting config={tmp_path / 'certvigil.yaml'}" in err
    assert f"database={tmp_path / 'certvigil.db'}" in err
    assert (tmp_path / "certvigil.db").exists()


def test_run_without_any_configuration_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """run with nothing to read exits 64 naming the places searched."""
    monkeypatch.chdir(tmp_path)
    code, _out, err = _run(["run", "--once"], capsys)
    assert code == ExitCode.USAGE
    assert "no configuration" in err
    assert str(tmp_path / "certvigil.yaml") in err


def test_run_refuses_a_database_in_a_missing_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A database_url in a directory that does not exist is a configuration error (64)
    naming file, line and path, and the directory is not created."""
    config = tmp_path / "c.yaml"
    config.write_text("scan:\n  interval: 1h\ndatabase_url: missing/dir/x.db\n")
    code, _out, err = _run(["run", "-c", str(config), "--once"], capsys)
    assert code == ExitCode.USAGE
    assert f"{config}:3: database_url:" in err
    assert "missing/dir does not exist" in err
    assert not (tmp_path / "missing").exists()
    code, _out, err = _run(["config", "check", str(config)], capsys)
    assert code == ExitCode.USAGE
    assert "missing/dir does not exist" in err


@pytest.mark.parametrize("command", [["run", "--once"], ["inventory"]])
def test_a_file_that_is_not_a_database_exits_74(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    """A database file that is not a database exits 74 (EX_IOERR), not 3, in words."""
    bad = tmp_path / "inv.db"
    bad.write_bytes(b"this is not a SQLite database, just some text " * 20)
    config = tmp_path / "c.yaml"
    config.write_text("database_url: inv.db\n")
    code, _out, err = _run([*command, "-c", str(config)], capsys)
    assert code == ExitCode.DATABASE == 74
    assert "file is not a database" in err
    assert "Traceback" not in err


def test_config_check_without_a_path_checks_the_file_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """config check with no argument checks ./certvigil.yaml and names its database."""
    (tmp_path / "certvigil.yaml").write_text("database_url: certvigil.db\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = _run(["config", "check"], capsys)
    assert code == ExitCode.OK, err
    assert f"{tmp_path / 'certvigil.yaml'}: valid (yaml)" in out
    assert f"database: {tmp_path / 'certvigil.db'}\n" in out

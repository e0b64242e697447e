"""``certvigil users add|list|remove`` through the real entry point."""

from __future__ import annotations

from pathlib import Path

import pytest

from certvigil.server.dashboard.auth import verify_password
from certvigil.store import dashboard as board
from certvigil.store import open_store
from tests.cli.scan_lab import run_cli


def test_add_list_remove(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A user added from a password file can be verified, is listed, and is removed."""
    db = str(tmp_path / "users.db")
    secret = tmp_path / "pw"
    secret.write_text("a long passphrase\nignored second line\n")
    added = run_cli(
        capsys, "users", "add", "--db", db, "--name", "alice", "--password-file", str(secret)
    )
    assert added.code == 0, added.stderr
    with open_store(db) as store, store.read() as connection:
        user = board.get_user(connection, "alice")
    assert user is not None
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, "a long passphrase")
    assert not verify_password(user.password_hash, "a long passphrase\n")

    listed = run_cli(capsys, "users", "list", "--db", db)
    assert listed.code == 0 and listed.stdout.startswith("alice\t")

    again = run_cli(
        capsys, "users", "add", "--db", db, "--name", "alice", "--password-file", str(secret)
    )
    assert again.code == 64 and "already exists" in again.stderr

    removed = run_cli(capsys, "users", "remove", "--db", db, "--name", "alice")
    assert removed.code == 0
    gone = run_cli(capsys, "users", "remove", "--db", db, "--name", "alice")
    assert gone.code == 64 and "no dashboard user 'alice'" in gone.stderr


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("bob", "short", "at least 8 characters"),
        ("b\x1b[31mob", "long enough pw", "--name 'b\\x1b[31mob'"),
        ("", "long enough pw", "--name ''"),
    ],
)
def test_bad_names_and_passwords_are_one_line_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, name: str, password: str, message: str
) -> None:
    """A short password or a name with control characters is refused with exit 64."""
    secret = tmp_path / "pw"
    secret.write_text(password)
    result = run_cli(
        capsys,
        "users",
        "add",
        "--db",
        str(tmp_path / "u.db"),
        "--name",
        name,
        "--password-file",
        str(secret),
    )
    assert result.code == 64
    assert message in result.stderr
    assert "\x1b" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_password_file_and_no_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A missing password file names it; with no file and no terminal, it says what to do."""
    db = str(tmp_path / "u.db")
    missing = run_cli(
        capsys, "users", "add", "--db", db, "--name", "a", "--password-file", str(tmp_path / "nope")
    )
    assert missing.code == 64 and "nope" in missing.stderr
    no_tty = run_cli(capsys, "users", "add", "--db", db, "--name", "a")
    assert no_tty.code == 64 and "--password-file" in no_tty.stderr


def test_roles(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """--role viewer is stored and listed; admin is the default; another role is exit 64."""
    db = str(tmp_path / "roles.db")
    secret = tmp_path / "pw"
    secret.write_text("a long passphrase\n")
    common = ("--db", db, "--password-file", str(secret))
    assert run_cli(capsys, "users", "add", "--name", "noc", "--role", "viewer", *common).code == 0
    assert run_cli(capsys, "users", "add", "--name", "ops", *common).code == 0
    wrong = run_cli(capsys, "users", "add", "--name", "x", "--role", "root", *common)
    assert wrong.code == 64 and "root" in wrong.stderr

    listed = run_cli(capsys, "users", "list", "--db", db)
    rows = [line.split("\t")[:2] for line in listed.stdout.splitlines()]
    assert rows == [["noc", "viewer"], ["ops", "admin"]]
    with open_store(db) as store, store.read() as connection:
        viewer = board.get_user(connection, "noc")
    assert viewer is not None and viewer.role is board.UserRole.VIEWER

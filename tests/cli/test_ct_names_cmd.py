"""ct search, check-rules and feed through the real entry point, against local servers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import websockets

from certvigil.ct.fetch.certstream import read_certstream
from certvigil.ct.fetch.feed import CertstreamFeed, tail_feed_entries
from certvigil.ct.fetch.http import FetchPolicy
from certvigil.ct.log_list import CtLog, LogProtocol, LogState
from certvigil.ct.signature import log_id
from certvigil.ct.static_ct import checkpoint_origin
from tests.cli.scan_lab import run_cli
from tests.support.crtsh_server import CrtshFault, CrtshServer, recorded
from tests.support.ct_log_server import NAVIGLI_ROOTS, CtLogServer, TestLogKey, navigli_files

CONFIG = """\
ct:
  domains:
    - name: examplebank.com
      known_names: [www.examplebank.com]
  keywords: {search: [examplebank, login, secure], threshold: 2, blacklist: [examplebank.com]}
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A configuration with the issue's ct: example."""
    path = tmp_path / "certvigil.yaml"
    path.write_text(CONFIG)
    return path


@pytest.mark.parametrize(
    ("name", "code", "says"),
    [
        ("login-examplebank.com", 1, "match: 2 keywords found (login, examplebank)"),
        ("secure.login.examplebank.com", 0, "blacklisted by examplebank.com"),
        ("examp1ebank.com", 1, "examp1ebank.com imitates examplebank.com (homoglyph)"),
        ("www.examplebank.com", 0, "under examplebank.com"),
        ("unrelated.org", 0, "none of the 3 search keywords occurs"),
    ],
)
def test_check_rules_explains_each_verdict(
    capsys: pytest.CaptureFixture[str], config: Path, name: str, code: int, says: str
) -> None:
    """Each name gets its verdict, its reason on stdout, and the exit code for it."""
    result = run_cli(capsys, "ct", "check-rules", name, "--config", str(config))

    assert result.code == code, result.stderr
    assert says in result.stdout


def test_check_rules_json_names_the_technique(
    capsys: pytest.CaptureFixture[str], config: Path
) -> None:
    """--json is one document with the look-alike and keyword findings."""
    result = run_cli(capsys, "ct", "check-rules", "exampelbank.com", "-c", str(config), "--json")

    document = json.loads(result.stdout)
    assert document["lookalike"] == {
        "lookalike": "exampelbank.com",
        "imitates": "examplebank.com",
        "technique": "transposition",
    }
    assert document["is_match"] is True


def test_check_rules_escapes_what_it_shows(capsys: pytest.CaptureFixture[str]) -> None:
    """An IDN is shown in both forms; a name with a control character is refused, escaped."""
    idn = run_cli(capsys, "ct", "check-rules", "xn--exmple-4nf.com", "--watch", "example.com")
    bad = run_cli(capsys, "ct", "check-rules", "ex\x1bmple.com", "--watch", "example.com")

    assert idn.code == 1
    assert "(xn--exmple-4nf.com)" in idn.stdout
    assert "confusable" in idn.stdout
    assert bad.code == 64
    assert bad.stderr == 'error: "ex\\x1bmple.com": not a host name\n'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ct: [1]\n", "certvigil.yaml: ct: must be a mapping"),
        ("ct:\n  keywords: {threshold: 0}\n", "ct.keywords.threshold: must be a whole number"),
        ("scan: {}\n", "no ct: section"),
        ("ct:\n  domains: [{name: '*.x.com'}]\n", "drop the *."),
        (": : :\n", "not YAML"),
    ],
)
def test_a_bad_configuration_is_one_line_and_exit_64(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, message: str
) -> None:
    """A broken ct: section is a one-line error naming file and field, exit 64."""
    path = tmp_path / "certvigil.yaml"
    path.write_text(text)

    result = run_cli(capsys, "ct", "check-rules", "a.example", "-c", str(path))

    assert result.code == 64
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


def test_check_rules_without_rules_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing to check against is said, exit 64."""
    result = run_cli(capsys, "ct", "check-rules", "a.example")

    assert result.code == 64
    assert "no rules to check against" in result.stderr


@pytest.fixture
def crtsh() -> Iterator[CrtshServer]:
    """A local crt.sh with github.com's real answer."""
    with CrtshServer() as server:
        server.answers["%.github.com"] = recorded("github.com_wildcard.json")
        yield server


def test_search_lists_the_history_and_summarises_on_stderr(
    capsys: pytest.CaptureFixture[str], crtsh: CrtshServer
) -> None:
    """The table goes to stdout, the count to stderr; the history is complete: exit 0."""
    result = run_cli(capsys, "ct", "search", "github.com", "--crtsh-url", crtsh.url)

    assert result.code == 0, result.stderr
    assert "skyline.github.com" in result.stdout
    assert "crt.sh: 11 certificates for github.com" in result.stderr
    assert "incomplete" not in result.stderr


def test_search_states_the_row_cap(capsys: pytest.CaptureFixture[str], crtsh: CrtshServer) -> None:
    """At 10,000 rows stderr says the history is incomplete, the document too; exit 1."""
    rows = json.loads(recorded("github.com_wildcard.json"))
    crtsh.answers["%.github.com"] = json.dumps(
        [{**rows[i % len(rows)], "id": 5_000_000 + i} for i in range(10_000)]
    ).encode()

    document = run_cli(capsys, "ct", "search", "github.com", "--crtsh-url", crtsh.url, "--json")

    assert document.code == 1
    assert "warning: crt.sh returned its maximum of 10,000 rows" in document.stderr
    assert json.loads(document.stdout)["is_capped"] is True
    assert "maximum of 10,000 rows" in json.loads(document.stdout)["notice"]


def test_search_when_crtsh_fails_is_one_line_and_exit_3(
    capsys: pytest.CaptureFixture[str], crtsh: CrtshServer
) -> None:
    """crt.sh failing past the retries: a one-line error, exit 3 (could not check)."""
    crtsh.faults.append(CrtshFault(404, 5))

    result = run_cli(capsys, "ct", "search", "github.com", "--crtsh-url", crtsh.url)

    assert result.code == 3
    assert result.stderr.startswith("error: ") and "HTTP status 404" in result.stderr
    assert result.stderr.count("\n") == 1


def test_the_feed_source_tails_a_real_static_log_to_a_websocket_client() -> None:
    """ct feed's source reads Navigli's 1,024 verified entries; a client gets them in order."""
    key = TestLogKey()
    with CtLogServer() as server:
        site = server.site("navigli")
        log = CtLog(
            description="Navigli2025h2 (local)",
            operator="test",
            log_id=log_id(key.der),
            key=key.der,
            protocol=LogProtocol.STATIC,
            url=server.url("navigli"),
            submission_url=server.url("navigli"),
            mmd=60,
            state=LogState.USABLE,
        )
        site.files.update(navigli_files(1024))
        origin = checkpoint_origin(log.submission_url)
        site.files["checkpoint"] = key.checkpoint(origin, 1024, NAVIGLI_ROOTS[1024])
        policy = FetchPolicy(deadline=5.0, retries=1, backoff_base=0.01)

        async def run() -> list[object]:
            async with CertstreamFeed(port=0, heartbeat_s=None) as feed:
                host, port = feed.address
                reader = asyncio.create_task(_collect(f"ws://{host}:{port}/domains-only", 1024))
                async with asyncio.timeout(10):
                    while feed.stats.clients < 1:
                        await asyncio.sleep(0.01)
                source = tail_feed_entries([log], from_start=True, poll_s=3600, policy=policy)
                published = 0
                async for entry in source:
                    feed.publish(entry)
                    published += 1
                    if published == 1024:
                        break
                await source.aclose()
                return await reader

        got = asyncio.run(run())

    assert len(got) == 1024
    assert all(not isinstance(m, Exception) for m in got)


async def _collect(url: str, count: int) -> list[object]:
    return [m async for m in read_certstream(url, max_messages=count, idle_timeout_s=20)]


async def _collect_once_connected(url: str, count: int, release: threading.Event) -> list[str]:
    """``count`` messages from ``url``, letting the log answer only once connected."""
    got: list[str] = []
    async with websockets.connect(url, open_timeout=20) as connection:
        release.set()
        while len(got) < count:
            message = await asyncio.wait_for(connection.recv(), timeout=20)
            got.append(message if isinstance(message, str) else message.decode())
    return got


def test_feed_refuses_a_bad_listen_address(capsys: pytest.CaptureFixture[str]) -> None:
    """--listen without a port is a usage error."""
    result = run_cli(capsys, "ct", "feed", "--listen", "localhost", "--log-list", "x.json")

    assert result.code == 64
    assert "use HOST:PORT" in result.stderr


def test_ct_feed_serves_a_local_log_list_to_a_certstream_client(tmp_path: Path) -> None:
    """`certvigil ct feed --from-start` tails the log of a log list and streams its names.

    Given a log list naming Navigli (served on loopback with a signed checkpoint), the
    command runs as its own process; a WebSocket client on /domains-only reads the
    first 300 entries' names; SIGINT stops the command with exit 130.
    """
    key = TestLogKey()
    with CtLogServer() as server:
        site = server.site("navigli")
        url = server.url("navigli")
        site.files.update(navigli_files(1024))
        site.files["checkpoint"] = key.checkpoint(checkpoint_origin(url), 1024, NAVIGLI_ROOTS[1024])
        log_list = tmp_path / "log_list.json"
        log_list.write_text(
            json.dumps(
                {
                    "version": "1.0",
                    "log_list_timestamp": "2026-12-01T00:00:00Z",
                    "operators": [
                        {
                            "name": "test",
                            "email": ["ct@example.org"],
                            "logs": [],
                            "tiled_logs": [
                                {
                                    "description": "Navigli2025h2 (local)",
                                    "log_id": base64.b64encode(log_id(key.der)).decode(),
                                    "key": base64.b64encode(key.der).decode(),
                                    "submission_url": url,
                                    "monitoring_url": url,
                                    "mmd": 60,
                                    "state": {"usable": {"timestamp": "2025-05-01T00:00:00Z"}},
                                }
                            ],
                        }
                    ],
                }
            )
        )
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        # The feed is live: what it publishes before a client is connected is nobody's.
        # The log's first data tile is held until the client is in (the checkpoint is
        # not: the feed may read it before it listens).
        _asked, release = server.hold("tile/data/000")
        command = [sys.executable, "-m", "certvigil", "ct", "feed", "--log-list", str(log_list)]
        with subprocess.Popen(
            [*command, "--listen", "127.0.0.1:0", "--from-start", "--poll", "3600"],
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        ) as process:
            try:
                assert process.stderr is not None
                banner = process.stderr.readline()  # the address it serves on, once listening
                assert " on ws://" in banner, banner
                ws_url = banner.split(" on ", 1)[1].split(" ", 1)[0]
                got = asyncio.run(_collect_once_connected(ws_url + "domains-only", 300, release))
            finally:
                process.send_signal(signal.SIGINT)
                code = process.wait(timeout=30)

    assert banner.startswith("serving 1 logs as certstream on ws://127.0.0.1:")
    assert len(got) == 300
    assert code == 130


def test_search_escapes_hostile_crtsh_text(
    capsys: pytest.CaptureFixture[str], crtsh: CrtshServer
) -> None:
    """An issuer with an escape sequence and a name with a bidi override show escaped."""
    rows = json.loads(recorded("github.com_wildcard.json"))[:1]
    rows[0]["issuer_name"] = "C=US, CN=Evil\x1b[2J CA"
    rows[0]["name_value"] = "a.github.com\nevil\u202emoc.github.com"
    crtsh.answers["%.github.com"] = json.dumps(rows).encode()

    result = run_cli(capsys, "ct", "search", "github.com", "--crtsh-url", crtsh.url)

    assert result.code == 0, result.stderr
    assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
    assert "\\x1b" in result.stdout

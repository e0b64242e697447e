"""Report batches are judged and stored in a process of their own: it ends with the server,
and its death costs at most the batch it was storing, which the agent sends again."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from certvigil.config.loading import LoadedConfig
from certvigil.demo.pki import IssuedCert, ThrowawayPki
from certvigil.server.app import create_app
from certvigil.server.ingest import AgentInfo
from certvigil.server.ingest_process import BatchRequest
from certvigil.server.keys import Scope
from certvigil.server.trust import TrustDocument
from certvigil.store import Store
from certvigil.store.models import OBSERVATIONS
from tests.server.conftest import make_key, write_server_config
from tests.server.scanned import scanned_items
from tests.server.test_api import batch as report
from tests.support.live_app import serve_app
from tests.support.serve_process import ServeProcess

GONE_WITHIN_S = 20.0


@pytest.fixture(scope="module")
def items(pki: ThrowawayPki, leaf: IssuedCert, expiring_leaf: IssuedCert) -> list[dict[str, Any]]:
    """Observations of two endpoints."""
    return scanned_items(pki, [leaf, expiring_leaf])


def running(pid: int) -> bool:
    """The process exists and is not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + GONE_WITHIN_S
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def observations(store: Store) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(OBSERVATIONS)).scalar_one())


@pytest.fixture
def agent_key(server_store: Store) -> dict[str, str]:
    return {"X-API-Key": make_key(server_store, "lab-a", Scope.AGENT)}


@pytest.fixture
def app(server_loaded: LoadedConfig, server_store: Store) -> Any:
    return create_app(server_loaded, server_store, background=False)


def first_batch(
    url: str, key: dict[str, str], items: list[dict[str, Any]], pki: ThrowawayPki
) -> None:
    answer = httpx.post(f"{url}/api/v1/reports", json=report(items[:1], pki), headers=key)
    assert answer.status_code == 200, answer.text
    assert answer.json()["accepted"] == 1


def test_batches_are_stored_by_another_process_that_ends_with_the_server(
    app: Any,
    server_store: Store,
    agent_key: dict[str, str],
    items: list[dict[str, Any]],
    pki: ThrowawayPki,
) -> None:
    writer = app.state.server.writer
    with serve_app(app) as url:
        first_batch(url, agent_key, items, pki)
        pid = writer.pid
        assert pid is not None and pid != os.getpid() and running(pid)
    assert writer.pid is None
    assert wait_gone(pid), f"the ingest process {pid} outlived its server"
    assert observations(server_store) == 1


def test_a_process_killed_mid_batch_answers_503_and_the_batch_sent_again_is_stored_once(
    app: Any,
    server_loaded: LoadedConfig,
    server_store: Store,
    agent_key: dict[str, str],
    items: list[dict[str, Any]],
    pki: ThrowawayPki,
) -> None:
    writer = app.state.server.writer
    database = server_loaded.database_url.removeprefix("sqlite:///")
    with serve_app(app) as url:
        first_batch(url, agent_key, items, pki)
        killed = writer.pid
        assert killed is not None
        # Another writer holds the inventory, so the next batch waits inside the process.
        blocker = sqlite3.connect(database, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        body = report(items[1:], pki)
        answers: list[httpx.Response] = []
        posting = threading.Thread(
            target=lambda: answers.append(
                httpx.post(f"{url}/api/v1/reports", json=body, headers=agent_key, timeout=60)
            )
        )
        posting.start()
        try:
            time.sleep(1.0)
            os.kill(killed, signal.SIGKILL)
            posting.join(30)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert not posting.is_alive()
        refused = answers[0]
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "unavailable"
        assert "send it again" in refused.json()["error"]["message"]
        again = httpx.post(f"{url}/api/v1/reports", json=body, headers=agent_key)
        assert again.status_code == 200, again.text
        assert again.json()["accepted"] == 1 and again.json()["duplicate"] is False
        assert writer.pid not in (None, killed)
        repeated = httpx.post(f"{url}/api/v1/reports", json=body, headers=agent_key).json()
        assert repeated["duplicate"] is True
    assert observations(server_store) == 2


def test_a_process_that_died_between_batches_is_replaced_before_the_next(
    app: Any,
    server_store: Store,
    agent_key: dict[str, str],
    items: list[dict[str, Any]],
    pki: ThrowawayPki,
) -> None:
    writer = app.state.server.writer
    with serve_app(app) as url:
        first_batch(url, agent_key, items, pki)
        killed = writer.pid
        assert killed is not None
        os.kill(killed, signal.SIGKILL)
        assert wait_gone(killed)
        second = httpx.post(f"{url}/api/v1/reports", json=report(items[1:], pki), headers=agent_key)
        assert second.status_code == 200, second.text
        assert second.json()["accepted"] == 1
    assert observations(server_store) == 2


@pytest.fixture
def served(tmp_path: Path, sqlite_url: str) -> Iterator[ServeProcess]:
    server = ServeProcess(write_server_config(tmp_path, sqlite_url))
    server.start()
    try:
        yield server
    finally:
        server.kill()


def test_the_ingest_process_leaves_when_its_server_is_killed(served: ServeProcess) -> None:
    """``certvigil serve`` names its ingest process; SIGKILL to the server alone (no
    chance to close anything) still leaves no orphan behind."""
    named = [re.search(r"ingest process (\d+)$", line) for line in served.log]
    pids = [int(match.group(1)) for match in named if match]
    assert len(pids) == 1, served.log
    assert running(pids[0])
    os.kill(served.pid, signal.SIGKILL)
    assert wait_gone(pids[0]), f"the ingest process {pids[0]} outlived its killed server"


def test_batches_sent_together_each_get_their_own_answer(
    app: Any,
    server_store: Store,
    agent_key: dict[str, str],
    items: list[dict[str, Any]],
    pki: ThrowawayPki,
) -> None:
    """Batches are sent to the process before the ones ahead are answered: each answer
    must still reach its own request (batch ``n`` carries ``n`` broken items)."""
    broken = {**items[0], "format": "something/9"}
    bodies = [report([items[n % 2], *[broken] * n], pki) for n in range(8)]
    answers: dict[int, httpx.Response] = {}

    def post(n: int) -> None:
        answers[n] = httpx.post(f"{url}/api/v1/reports", json=bodies[n], headers=agent_key)

    with serve_app(app) as url:
        posting = [threading.Thread(target=post, args=(n,)) for n in range(8)]
        for thread in posting:
            thread.start()
        for thread in posting:
            thread.join(60)
    for n in range(8):
        assert answers[n].status_code == 200, answers[n].text
        answer = answers[n].json()
        assert answer["report_id"] == bodies[n]["report_id"]
        assert (answer["accepted"], len(answer["rejected"])) == (1, n)
    assert observations(server_store) == 8


def test_a_batch_that_cannot_be_sent_does_not_take_the_next_ones_answer(
    app: Any, items: list[dict[str, Any]], pki: ThrowawayPki
) -> None:
    """Items that cannot be encoded for the process (none decoded from JSON are) fail
    their own request; the next batch still gets its own answer."""
    writer = app.state.server.writer
    body = report(items[:1], pki)

    def request(batch_items: list[Any]) -> BatchRequest:
        return BatchRequest(
            report_id=f"lab-a/{uuid.uuid4().hex}",
            agent=AgentInfo(name="lab-a", version="t"),
            api_key_id=None,
            trust=TrustDocument.model_validate(body["trust"]),
            thresholds=None,
            items=batch_items,
            now=datetime.now(UTC),
        )

    try:
        with pytest.raises(Exception, match="pickle"):
            writer.submit(request([lambda: None]))
        outcome = writer.submit(request(items[:1])).result(60)
        assert outcome.accepted == 1 and not outcome.rejected
    finally:
        writer.close()

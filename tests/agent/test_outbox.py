"""The agent's outbox: order, removal, the disk bound and the kept assignment."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from certvigil.agent.client import ServerUrls
from certvigil.agent.outbox import AgentOutbox


def test_batches_come_out_in_the_order_they_went_in(tmp_path: Path) -> None:
    """Oldest first, each under its own report id, until removed."""
    box = AgentOutbox(tmp_path / "o.db", max_bytes=1_000_000)
    ids = [box.add([{"n": n}]) for n in range(3)]
    seen = []
    while (batch := box.oldest()) is not None:
        seen.append((batch.report_id, batch.items))
        box.remove(batch.seq)
    box.close()
    assert seen == [(ids[n], [{"n": n}]) for n in range(3)]
    assert len(set(ids)) == 3


def test_queued_batches_survive_a_restart(tmp_path: Path) -> None:
    """What was queued is there after the file is closed and opened again."""
    first = AgentOutbox(tmp_path / "o.db", max_bytes=1_000_000)
    report_id = first.add([{"n": 1}])
    first.close()
    second = AgentOutbox(tmp_path / "o.db", max_bytes=1_000_000)
    batch = second.oldest()
    assert batch is not None and batch.report_id == report_id
    assert second.backlog() == (1, 1)
    second.close()


def test_a_full_outbox_drops_the_oldest_batches_and_warns(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Past the bound the oldest batches go, counted, with a warning naming them."""
    box = AgentOutbox(tmp_path / "o.db", max_bytes=2_500)
    payload = [{"pad": "x" * 900}]
    with caplog.at_level(logging.WARNING, logger="certvigil.agent.outbox"):
        ids = [box.add(payload) for _ in range(5)]
    kept = []
    while (batch := box.oldest()) is not None:
        kept.append(batch.report_id)
        box.remove(batch.seq)
    assert kept == ids[-2:]
    assert box.dropped() == (3, 3)
    assert any("dropped the 1 oldest batches" in r.getMessage() for r in caplog.records)
    box.close()


def test_the_assignment_is_kept_for_runs_that_cannot_reach_the_server(tmp_path: Path) -> None:
    """The last list of assigned targets is read back, ``None`` before any."""
    box = AgentOutbox(tmp_path / "o.db", max_bytes=1_000)
    assert box.last_assigned() is None
    box.save_assigned([{"host": "127.0.0.1", "port": 443}])
    box.save_assigned([{"host": "127.0.0.2", "port": 443}])
    assert box.last_assigned() == [{"host": "127.0.0.2", "port": 443}]
    box.close()


@pytest.mark.parametrize(
    ("configured", "reports", "targets"),
    [
        (
            "https://cv.example:8750",
            "https://cv.example:8750/api/v1/reports",
            "https://cv.example:8750/api/v1/agents/me/targets",
        ),
        (
            "https://www.dnsscience.io/api/sslscout/report",
            "https://www.dnsscience.io/api/sslscout/report",
            "https://www.dnsscience.io/api/v1/agents/me/targets",
        ),
        (
            "http://127.0.0.1:9/prefix/",
            "http://127.0.0.1:9/prefix/api/v1/reports",
            "http://127.0.0.1:9/prefix/api/v1/agents/me/targets",
        ),
    ],
)
def test_the_configured_url_names_the_server(configured: str, reports: str, targets: str) -> None:
    """A base URL and SSL Scout's report URL both lead to the same API."""
    urls = ServerUrls.from_configured(configured)
    assert (urls.reports, urls.targets) == (reports, targets)

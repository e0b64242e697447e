"""Tailing an RFC 6962 log over HTTP: real get-sth and get-entries answers served by a
local log server (Argon2027h1 with its real key; Pilot and Argon entries under a test key
where the test needs the log to grow)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import pytest

from certvigil.ct.entry import LogEntry
from certvigil.ct.fetch.http import FetchPolicy
from certvigil.ct.fetch.tail import TailItem, TailResult, TailState, tail_once
from certvigil.ct.log_list import CtLog, LogProtocol, LogState
from certvigil.ct.merkle import leaf_hash, root_from_leaf_hashes, verify_consistency
from certvigil.ct.rfc6962 import MalformedEntry
from certvigil.ct.signature import log_id
from tests.ct.keys import log_key
from tests.support.ct_log_server import (
    ARGON_FIRST,
    CtLogServer,
    EntriesLog,
    Fault,
    TestLogKey,
    argon_entries,
    argon_sth,
    consistency_proof,
    entries_root,
    real_rfc6962_entries,
)

FAST = FetchPolicy(deadline=5.0, retries=3, backoff_base=0.01, backoff_cap=0.05)


@pytest.fixture
def server() -> Iterator[CtLogServer]:
    """A running log server."""
    with CtLogServer() as running:
        yield running


def _log(server: CtLogServer, site: str, key: bytes) -> CtLog:
    return CtLog(
        description=f"{site} (local)",
        operator="test",
        log_id=log_id(key),
        key=key,
        protocol=LogProtocol.RFC6962,
        url=server.url(site),
        mmd=86400,
        state=LogState.USABLE,
    )


def _tail(
    log: CtLog, state: TailState, seen: list[TailItem], *, stop_at: int | None = None
) -> TailResult:
    return asyncio.run(
        tail_once(log, state, seen.append, policy=FAST, stop_at=stop_at, batch_size=3, parallel=2)
    )


def test_argon_real_tree_head_and_entries_are_read_in_short_answers(server: CtLogServer) -> None:
    """Argon's real STH verifies with its real key; five entries come in answers of two."""
    site = server.site("argon")
    site.files["ct/v1/get-sth"] = argon_sth()
    site.entries = EntriesLog(ARGON_FIRST, argon_entries(), max_per_answer=2)
    log = _log(server, "argon", log_key("Argon2027h1"))
    seen: list[TailItem] = []

    result = _tail(log, TailState(position=ARGON_FIRST), seen, stop_at=ARGON_FIRST + 5)

    assert [item.index for item in seen] == [ARGON_FIRST + i for i in range(5)]
    assert all(isinstance(item, LogEntry) and item.chain for item in seen)
    assert result.state.position == ARGON_FIRST + 5 and result.state.last_error == ""
    assert result.state.tree_size == 384_071_894 and result.status.backlog == 0
    # Batches of 3 (380000000-2, 380000003-4), each answered two entries at a time.
    assert server.count("get-entries") == 3


def test_a_tree_head_with_a_bad_signature_is_reported(server: CtLogServer) -> None:
    """Argon's real STH with a changed root: a signature error, nothing read."""
    site = server.site("argon")
    site.files["ct/v1/get-sth"] = argon_sth().replace(b'"PRK7k', b'"PRK7j')
    site.entries = EntriesLog(ARGON_FIRST, argon_entries())
    seen: list[TailItem] = []

    result = _tail(_log(server, "argon", log_key("Argon2027h1")), TailState(), seen)

    assert seen == [] and result.state.position == 0 and result.state.tree_size is None
    assert "tree head of size 384071894" in result.state.last_error


def test_a_growing_log_with_faults_is_read_once_in_order(server: CtLogServer) -> None:
    """Four entries, then nine: 503s and a 429 on the way, every entry exactly once."""
    key = TestLogKey()
    every = real_rfc6962_entries()
    site = server.site("grow")
    site.files["ct/v1/get-sth"] = key.sth(4, entries_root(every[:4]))
    site.entries = EntriesLog(0, every[:4], max_per_answer=2)
    log = _log(server, "grow", key.der)
    seen: list[TailItem] = []
    first = _tail(log, TailState(), seen)
    assert first.state.position == 4

    site.files["ct/v1/get-sth"] = key.sth(9, entries_root(every))
    site.entries = EntriesLog(0, every, max_per_answer=2)
    server.inject(Fault("ct/v1/get-sth", 503, 1))
    server.inject(Fault("ct/v1/get-entries", 429, 1, retry_after="0"))
    server.inject(Fault("ct/v1/get-entries", 503, 2))
    second = _tail(log, first.state, seen)

    assert [item.index for item in seen] == list(range(9))
    assert second.state.position == 9 and second.state.last_error == ""
    assert second.state.tree_size == 9


def test_a_malformed_entry_is_recorded_and_the_log_goes_on(server: CtLogServer) -> None:
    """An entry whose leaf is not a MerkleTreeLeaf is handed out as malformed and skipped."""
    key = TestLogKey()
    every = real_rfc6962_entries()
    every[5] = {"leaf_input": "AAE=", "extra_data": ""}
    site = server.site("bad")
    site.files["ct/v1/get-sth"] = key.sth(9, entries_root(every))
    site.entries = EntriesLog(0, every)
    seen: list[TailItem] = []

    result = _tail(_log(server, "bad", key.der), TailState(), seen)

    assert [item.index for item in seen] == list(range(9))
    assert isinstance(seen[5], MalformedEntry) and "leaf_type 1" in seen[5].defect
    assert result.state.malformed == 1 and result.state.position == 9


def test_a_log_whose_tree_shrinks_is_reported(server: CtLogServer) -> None:
    """A verified tree head smaller than the last one verified is a log fault."""
    key = TestLogKey()
    every = real_rfc6962_entries()
    site = server.site("shrink")
    site.files["ct/v1/get-sth"] = key.sth(4, entries_root(every[:4]))
    site.entries = EntriesLog(0, every)
    state = TailState(position=9, tree_size=9, root_hash=entries_root(every))

    result = _tail(_log(server, "shrink", key.der), state, [])

    assert "has 4 entries, fewer than the 9 verified before" in result.state.last_error
    assert result.state.tree_size == 9


def test_a_log_that_keeps_failing_is_reported_not_raised(server: CtLogServer) -> None:
    """get-entries failing past the retries ends the pass with the error recorded."""
    key = TestLogKey()
    every = real_rfc6962_entries()
    site = server.site("down")
    site.files["ct/v1/get-sth"] = key.sth(9, entries_root(every))
    site.entries = EntriesLog(0, every)
    server.inject(Fault("ct/v1/get-entries", 503, 100))

    result = _tail(_log(server, "down", key.der), TailState(), [])

    assert result.state.position == 0
    assert "HTTP status 503, after 4 attempts" in result.state.last_error
    assert result.status.backlog == 9 and result.state.last_success is None


def test_a_get_entries_answer_that_is_not_json_is_reported(server: CtLogServer) -> None:
    """A log answering get-entries with HTML: a response error recorded, nothing handed out."""
    key = TestLogKey()
    every = real_rfc6962_entries()
    site = server.site("html")
    site.files["ct/v1/get-sth"] = key.sth(9, entries_root(every))
    site.files["ct/v1/get-entries"] = b"<html>maintenance</html>"
    seen: list[TailItem] = []

    result = _tail(_log(server, "html", key.der), TailState(), seen)

    assert seen == [] and result.state.position == 0
    assert result.state.last_error.startswith("get-entries: not JSON")


def test_entries_that_are_not_in_the_signed_tree_are_reported(server: CtLogServer) -> None:
    """Read from entry 0, the entries' root is compared with the tree head's: a log that
    serves another real entry in place of entry 3 is reported when the head is reached."""
    key = TestLogKey()
    every = real_rfc6962_entries()
    site = server.site("swap")
    site.files["ct/v1/get-sth"] = key.sth(9, entries_root(every))
    site.entries = EntriesLog(0, [*every[:3], every[4], *every[4:]])
    seen: list[TailItem] = []

    result = _tail(_log(server, "swap", key.der), TailState(), seen)

    assert len(seen) == 9 and result.state.last_success is None
    assert result.state.last_error.startswith("entries 0 to 8 give another root than the")


def test_the_compact_range_carries_over_between_passes(server: CtLogServer) -> None:
    """Four entries, then nine: the second pass checks all nine against the new head."""
    key = TestLogKey()
    every = real_rfc6962_entries()
    site = server.site("carry")
    site.files["ct/v1/get-sth"] = key.sth(4, entries_root(every[:4]))
    site.entries = EntriesLog(0, every)
    log = _log(server, "carry", key.der)
    first = _tail(log, TailState(), [])
    assert first.state.frontier is not None and first.state.last_error == ""

    forged = [*every[:8], every[0]]
    site.files["ct/v1/get-sth"] = key.sth(9, entries_root(forged))
    site.tree = [leaf_hash(base64.b64decode(e["leaf_input"])) for e in forged]  # its proofs
    second = _tail(log, first.state, [])

    assert "give another root" in second.state.last_error


# Consistency between successive tree heads (get-sth-consistency, RFC 9162 §2.1.4.2).


def test_consistency_proofs_the_test_log_serves_verify() -> None:
    """The test log's proofs (RFC 9162 §2.1.4.1) verify for every pair of sizes up to 9,
    and fail against another old root: the server is a fair log to test against."""
    leaves = [leaf_hash(base64.b64decode(e["leaf_input"])) for e in real_rfc6962_entries()]
    for second in range(1, 10):
        for first in range(1, second + 1):
            proof = consistency_proof(first, leaves[:second])
            old, new = root_from_leaf_hashes(leaves[:first]), root_from_leaf_hashes(leaves[:second])
            assert verify_consistency(first, second, proof, old, new)
            assert not verify_consistency(first, second, proof, new if first < second else b"", new)


def _grown(server: CtLogServer, name: str) -> tuple[CtLog, TailResult, TestLogKey]:
    key = TestLogKey()
    every = real_rfc6962_entries()
    site = server.site(name)
    site.files["ct/v1/get-sth"] = key.sth(4, entries_root(every[:4]))
    site.entries = EntriesLog(0, every)
    log = _log(server, name, key.der)
    first = _tail(log, TailState(), [])
    assert first.state.position == 4 and first.state.last_error == ""
    site.files["ct/v1/get-sth"] = key.sth(9, entries_root(every))
    return log, first, key


def test_a_new_tree_head_is_proven_to_extend_the_last(server: CtLogServer) -> None:
    """Four entries, then nine: the proof from 4 to 9 is asked for once and verifies."""
    log, first, _ = _grown(server, "proven")
    seen: list[TailItem] = []

    second = _tail(log, first.state, seen)

    assert server.count("get-sth-consistency?first=4&second=9") == 1
    assert [item.index for item in seen] == list(range(4, 9))
    assert second.state.last_error == "" and second.state.tree_size == 9


def test_a_bad_consistency_proof_is_a_log_fault_and_nothing_is_read(server: CtLogServer) -> None:
    """A proof that does not verify: a log fault named as such, position and head kept."""
    log, first, _ = _grown(server, "badproof")
    server.site("badproof").forge_consistency = True
    seen: list[TailItem] = []

    second = _tail(log, first.state, seen)

    assert seen == [] and second.state.position == 4 and second.state.tree_size == 4
    assert "consistency proof from 4 to 9 entries does not verify" in second.state.last_error
    assert second.state.last_error_kind == "LogFault"


def test_a_forked_history_cannot_be_proven_consistent(server: CtLogServer) -> None:
    """Nine entries whose first four differ from those verified (the log forked): even
    an honest proof over its new tree does not reach the old root."""
    log, first, key = _grown(server, "fork")
    every = real_rfc6962_entries()
    fork = [*every[4:8], *every[:4], every[8]]
    site = server.site("fork")
    site.files["ct/v1/get-sth"] = key.sth(9, entries_root(fork))
    site.entries = EntriesLog(0, fork)

    second = _tail(log, first.state, [])

    assert second.state.position == 4
    assert "does not extend the one verified before" in second.state.last_error


def test_a_consistency_answer_that_is_not_a_proof_is_reported(server: CtLogServer) -> None:
    """An answer with a hash that is not 32 bytes: a response error naming the element."""
    log, first, _ = _grown(server, "garbage")
    server.site("garbage").files["ct/v1/get-sth-consistency"] = b'{"consistency": ["AAAA"]}'

    second = _tail(log, first.state, [])

    assert second.state.position == 4
    assert "consistency[0] is not a base64 SHA-256 hash" in second.state.last_error

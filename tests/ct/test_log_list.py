"""Log list v3: parsing Google's real lists, their signature, and the choice of logs to tail."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import example, given
from hypothesis import strategies as st

from certvigil.ct.errors import LogListError, SignatureError
from certvigil.ct.log_list import (
    LogProtocol,
    LogState,
    SkipReason,
    parse_log_list,
    select_logs,
    verify_log_list_signature,
)
from tests.ct.conftest import data

NOW = datetime(2026, 1, 3, tzinfo=UTC)


def _by_description(logs: Any, text: str) -> Any:
    return next(log for log in logs if text in log.description)


def test_real_list_parses_every_log(log_list_bytes: bytes) -> None:
    """v80.14 yields its 49 RFC 6962 and 26 tiled logs with their fields."""
    parsed = parse_log_list(log_list_bytes, source="log_list.json")

    assert parsed.version == "80.14"
    assert parsed.timestamp == datetime(2026, 1, 2, 12, 57, 1, tzinfo=UTC)
    assert sum(log.protocol is LogProtocol.RFC6962 for log in parsed.logs) == 49
    assert sum(log.protocol is LogProtocol.STATIC for log in parsed.logs) == 26
    argon = _by_description(parsed.logs, "Argon2025h2")
    assert argon.operator == "Google"
    assert argon.url == "https://ct.googleapis.com/logs/us1/argon2025h2/"
    assert argon.log_id_b64 == "EvFONL1TckyEBhnDjz96E/jntWKHiJxtMAWE6+WGJjo="
    assert argon.mmd == 86400
    assert argon.state is LogState.USABLE
    assert argon.interval_start == datetime(2025, 7, 1, tzinfo=UTC)
    assert argon.interval_end == datetime(2026, 1, 1, tzinfo=UTC)
    oak = _by_description(parsed.logs, "Oak2025h2")
    assert oak.state is LogState.READONLY
    assert oak.final_tree_head is not None
    assert oak.final_tree_head.tree_size == 1958525022
    tuscolo = _by_description(parsed.logs, "Tuscolo2025h2")
    assert tuscolo.url == "https://tuscolo2025h2.skylight.geomys.org/"
    assert tuscolo.submission_url == "https://tuscolo2025h2.sunlight.geomys.org/"
    assert tuscolo.mmd == 60


def test_all_logs_list_carries_every_state() -> None:
    """all_logs_list.json v53.34 has every state but qualified, logs without one, and is marked."""
    parsed = parse_log_list(data("loglist/all_logs_list.json"), source="all_logs_list.json")

    assert parsed.is_all_logs
    assert len(parsed.logs) == 181
    assert {log.state for log in parsed.logs} == set(LogState) - {LogState.QUALIFIED}
    twig = _by_description(parsed.logs, "Twig2025h2b")
    assert twig.log_type == "monitoring_only"
    assert twig.url == "https://twig.ct.letsencrypt.org/2025h2b/"


def test_real_signature_verifies_and_one_changed_byte_fails(log_list_bytes: bytes) -> None:
    """Google's RSA signature checks over the exact bytes; a changed byte is refused."""
    signature = data("loglist/log_list.sig")
    key = data("loglist/log_list_pubkey.pem")
    verify_log_list_signature(log_list_bytes, signature, key, source="log_list.json")

    tampered = log_list_bytes.replace(b'"mmd": 86400', b'"mmd": 86401', 1)
    with pytest.raises(
        SignatureError, match=r"log_list\.json: the log list's signature does not verify"
    ):
        verify_log_list_signature(tampered, signature, key, source="log_list.json")


def test_ecdsa_signed_list_verifies_with_a_generated_key(log_list_bytes: bytes) -> None:
    """A list signed with an ECDSA key verifies with its DER key and fails with another."""
    private = ec.generate_private_key(ec.SECP256R1())
    signature = private.sign(log_list_bytes, ec.ECDSA(hashes.SHA256()))
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    verify_log_list_signature(log_list_bytes, signature, der, source="mine")

    other = ec.generate_private_key(ec.SECP256R1()).public_key()
    other_der = other.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(SignatureError):
        verify_log_list_signature(log_list_bytes, signature, other_der, source="mine")
    with pytest.raises(SignatureError, match="cannot be read"):
        verify_log_list_signature(log_list_bytes, signature, b"not a key", source="mine")


def test_selection_on_the_real_list(log_list_bytes: bytes) -> None:
    """At 2026-01-03: placeholders and past shards are skipped, readonly logs stop at their end."""
    selection = select_logs(parse_log_list(log_list_bytes, source="l"), now=NOW)
    tailed = {plan.log.description: plan for plan in selection.tail}
    skipped = {entry.log.description: entry.reason for entry in selection.skipped}

    assert len(tailed) == 48
    placeholders = [name for name, reason in skipped.items() if reason is SkipReason.PLACEHOLDER]
    assert len(placeholders) == 2
    assert all("ogus" in name for name in placeholders)
    assert skipped["Google 'Argon2025h2' log"] is SkipReason.OUTSIDE_WINDOW
    assert tailed["Let's Encrypt 'Oak2025h2'"].stop_at == 1958525022
    assert tailed["Google 'Argon2026h1' log"].stop_at is None
    assert "DigiCert 'Wyvern2027h1'" in tailed  # starts within 398 days
    assert skipped["DigiCert 'Wyvern2027h2'"] is SkipReason.OUTSIDE_WINDOW  # starts after
    assert "TrustAsia Luoshu2027" in tailed
    shorter = select_logs(
        parse_log_list(log_list_bytes, source="l"), now=NOW, horizon=timedelta(days=90)
    )
    assert "DigiCert 'Wyvern2027h1'" not in {plan.log.description for plan in shorter.tail}


def test_selection_on_all_logs_skips_rejected_test_and_stateless_logs() -> None:
    """Rejected, test and historic stateless logs are skipped; monitoring-only logs are not."""
    parsed = parse_log_list(data("loglist/all_logs_list.json"), source="all")
    selection = select_logs(parsed, now=datetime(2025, 5, 6, tzinfo=UTC))
    skipped = {entry.log.description: entry.reason for entry in selection.skipped}
    tailed = {plan.log.description for plan in selection.tail}

    assert all(log.state is not LogState.REJECTED for log in (p.log for p in selection.tail))
    assert skipped["Google 'Solera2025h2' log"] is SkipReason.TEST_LOG
    assert skipped["Google 'Submariner' log"] is SkipReason.NO_STATE
    assert "Let's Encrypt Twig2025h2b" in tailed
    with_tests = select_logs(parsed, now=datetime(2025, 5, 6, tzinfo=UTC), include_test=True)
    assert "Google 'Solera2025h2' log" in {plan.log.description for plan in with_tests.tail}


def _first_log(document: dict[str, Any]) -> dict[str, Any]:
    log: dict[str, Any] = document["operators"][0]["logs"][0]
    return log


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda d: _first_log(d).update(log_id=base64.b64encode(bytes(32)).decode()),
            r"operators\[0\]\.logs\[0\]\.log_id: is not the SHA-256 of the log's key",
        ),
        (lambda d: _first_log(d).pop("key"), r"operators\[0\]\.logs\[0\]\.key: missing"),
        (lambda d: _first_log(d).update(key="%%%"), r"logs\[0\]\.key: not valid base64"),
        (lambda d: _first_log(d).update(url="ftp://x/"), r"logs\[0\]\.url: not an http\(s\) URL"),
        (lambda d: _first_log(d).update(mmd="a day"), r"logs\[0\]\.mmd: missing or not a whole"),
        (
            lambda d: _first_log(d).update(state={"frozen": {}}),
            r'logs\[0\]\.state: unknown state "frozen"',
        ),
        (
            lambda d: _first_log(d)["temporal_interval"].update(end_exclusive="2020-01-01"),
            r"temporal_interval\.end_exclusive: has no time zone",
        ),
        (lambda d: d.update(operators={}), r"operators: missing or not a list"),
    ],
)
def test_mistakes_are_named_by_field(log_list_bytes: bytes, change: Any, message: str) -> None:
    """Each kind of mistake raises LogListError naming the field."""
    document = json.loads(log_list_bytes)
    change(document)

    with pytest.raises(LogListError, match=message):
        parse_log_list(json.dumps(document).encode(), source="list.json")


def test_not_json_and_oversized_lists_are_refused() -> None:
    """Bytes that are not JSON, or too many of them, raise LogListError naming the source."""
    with pytest.raises(LogListError, match=r"^list\.json: not JSON"):
        parse_log_list(b"\xff{", source="list.json")
    with pytest.raises(LogListError, match="more than"):
        parse_log_list(b" " * (17 * 1024 * 1024), source="list.json")


def test_control_characters_in_descriptions_are_replaced(log_list_bytes: bytes) -> None:
    """A description with terminal escapes comes out with them replaced."""
    document = json.loads(log_list_bytes)
    _first_log(document)["description"] = "evil\x1b[2Jlog"

    parsed = parse_log_list(json.dumps(document).encode(), source="l")

    assert parsed.logs[0].description == "evil\ufffd[2Jlog"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
_BASE = json.loads(data("loglist/log_list.json"))
_LOG_FIELDS = [*sorted(_BASE["operators"][0]["logs"][0]), "state", "certspotter_qps"]


@given(field=st.sampled_from(_LOG_FIELDS), value=_JSON, which=st.integers(0, 3))
@example(field="state", value={"readonly": {"timestamp": "2025-01-01T00:00:00Z"}}, which=0)
@example(field="temporal_interval", value={"start_inclusive": 1}, which=0)
def test_damaged_lists_raise_only_log_list_errors(field: str, value: Any, which: int) -> None:
    """Any value in any log field parses or raises LogListError, nothing else."""
    document = copy.deepcopy(_BASE)
    document["operators"][which]["logs"][0][field] = value
    try:
        parse_log_list(json.dumps(document).encode(), source="fuzz")
    except LogListError:
        pass


@given(value=_JSON)
def test_any_json_document_raises_only_log_list_errors(value: Any) -> None:
    """Any JSON document parses or raises LogListError."""
    try:
        parse_log_list(json.dumps(value).encode(), source="fuzz")
    except LogListError:
        pass


def test_selection_needs_an_aware_now(log_list_bytes: bytes) -> None:
    """A naive now is refused rather than compared wrongly with the list's UTC times."""
    with pytest.raises(ValueError, match="timezone-aware"):
        select_logs(parse_log_list(log_list_bytes, source="l"), now=datetime(2026, 1, 3))  # noqa: DTZ001

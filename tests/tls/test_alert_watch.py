"""The alert watcher reads alert records from a server's byte stream, however it is cut."""

from __future__ import annotations

import itertools

from hypothesis import example, given, settings
from hypothesis import strategies as st

from certvigil.tls.alert_watch import AlertWatcher, ReceivedAlert

SERVER_HELLO_RECORD = b"\x16\x03\x03\x00\x06" + b"\x02\x00\x00\x02\x03\x03"
FATAL_HANDSHAKE_FAILURE = b"\x15\x03\x03\x00\x02\x02\x28"
WARNING_UNRECOGNIZED_NAME = b"\x15\x03\x01\x00\x02\x01\x70"


def watched(*chunks: bytes) -> AlertWatcher:
    """A watcher fed ``chunks`` in order."""
    watcher = AlertWatcher()
    for chunk in chunks:
        watcher.feed(chunk)
    return watcher


def test_alert_split_over_many_reads_is_read() -> None:
    """An alert record delivered one byte per read is still read whole."""
    stream = SERVER_HELLO_RECORD + FATAL_HANDSHAKE_FAILURE
    watcher = watched(*(stream[i : i + 1] for i in range(len(stream))))
    assert watcher.alerts == [ReceivedAlert(level=2, description=40)]
    decisive = watcher.decisive_alert()
    assert decisive is not None and decisive.name == "handshake_failure"


def test_tolerated_warning_is_not_blamed_for_a_later_failure() -> None:
    """A warning followed by more records is not the decisive alert."""
    watcher = watched(WARNING_UNRECOGNIZED_NAME + SERVER_HELLO_RECORD)
    assert watcher.alerts == [ReceivedAlert(level=1, description=112)]
    assert watcher.decisive_alert() is None


def test_last_warning_is_decisive() -> None:
    """A warning that is the last record the server sent is what ended the handshake."""
    watcher = watched(SERVER_HELLO_RECORD, WARNING_UNRECOGNIZED_NAME)
    decisive = watcher.decisive_alert()
    assert decisive is not None and decisive.name == "unrecognized_name"


def test_reading_stops_at_encryption() -> None:
    """After ChangeCipherSpec, records are encrypted: nothing more is read as an alert."""
    watcher = watched(SERVER_HELLO_RECORD + b"\x14\x03\x03\x00\x01\x01" + FATAL_HANDSHAKE_FAILURE)
    assert watcher.stopped == "encrypted"
    assert watcher.alerts == []


def test_plain_text_stops_the_watcher() -> None:
    """A stream that does not start with a TLS record type is marked not_tls."""
    watcher = watched(b"220 mail.example ESMTP\r\n")
    assert watcher.stopped == "not_tls"
    assert watcher.decisive_alert() is None


def test_unknown_code_is_named_by_number() -> None:
    """An alert code outside the registry is named alert_<code>."""
    assert ReceivedAlert(level=2, description=222).name == "alert_222"


@settings(max_examples=300)
@given(data=st.binary(max_size=400), cuts=st.lists(st.integers(0, 400), max_size=8))
@example(data=FATAL_HANDSHAKE_FAILURE * 40, cuts=[3, 9])
@example(data=b"\x15\x03\x03\x00\x02", cuts=[])
def test_any_bytes_any_cuts_same_result(data: bytes, cuts: list[int]) -> None:
    """The watcher never raises, keeps at most 16 alerts, and ignores where reads split."""
    whole = watched(data)
    points = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    pieces = [data[a:b] for a, b in itertools.pairwise(points)]
    split = watched(*pieces)
    assert split.alerts == whole.alerts
    assert split.stopped == whole.stopped
    assert split.decisive_alert() == whole.decisive_alert()
    assert len(whole.alerts) <= 16

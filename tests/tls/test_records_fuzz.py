"""The record codec under the campaign's generator (fuzz/tls_records.py), fixed seed."""

from __future__ import annotations

import random
import time

from fuzz.tls_records import Generator, run_one
from hypothesis import given, settings
from hypothesis import strategies as st

from certvigil.tls.records import heartbeat_answered, server_flight_done


@settings(max_examples=max(500, settings.default.max_examples))
@given(st.integers(min_value=0, max_value=2**64))
def test_generated_answers_never_crash_the_parsers(seed: int) -> None:
    """Built, split and mutated server answers give a reply value, never an exception.

    Hypothesis picks the generator's seed (a plain ``random.Random`` makes the bytes
    quickly); a failure names the seed, which ``fuzz/tls_records.py`` can replay.
    """
    run_one(Generator(random.Random(seed)))


def test_a_trickle_of_one_byte_records_is_read_in_linear_time() -> None:
    """Two megabytes of one-byte handshake records are judged in well under a second.

    ``server_flight_done`` joined the records with ``bytes +=``, copying the whole
    prefix per record: 11 s for this input, on every chunk the probe received. Now it
    stops reading after MAX_REPLY_RECORDS records and refuses the stream as no flight.
    """
    size = 350_000
    stream = b"\x02\x00\x00\x26\x03\x03" + b"\x11" * 32 + b"\x00\xc0\x2f\x00"
    stream += b"\x0b" + size.to_bytes(3, "big") + b"a" * size
    data = b"".join(b"\x16\x03\x03\x00\x01" + stream[i : i + 1] for i in range(len(stream)))
    assert len(data) > 2_000_000
    started = time.perf_counter()
    assert server_flight_done(data) is False
    assert heartbeat_answered(data) is False
    assert time.perf_counter() - started < 4.0

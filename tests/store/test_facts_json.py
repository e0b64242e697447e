"""The facts column's text is the same whichever way it is written (``ingest.facts_json_text``)."""

from __future__ import annotations

import dataclasses

import pytest

from certvigil.analysis.certificate import certificate_facts
from certvigil.analysis.model import CertificateFacts
from certvigil.demo.pki import ThrowawayPki
from certvigil.store.driver import json_text
from certvigil.store.ingest import facts_json_text, facts_to_json
from tests.support.crafted import ODDITIES, craft


def _facts(der: bytes) -> CertificateFacts:
    _digest, found = certificate_facts(der)
    assert found is not None
    return found


# bad_printable_string is refused as a whole, so it has no facts.
@pytest.mark.parametrize("oddity", sorted(set(ODDITIES) - {"bad_printable_string"}))
def test_a_defective_certificates_facts_are_written_as_before(
    pki: ThrowawayPki, oddity: str
) -> None:
    """orjson writes the dataclass exactly as json_text wrote facts_to_json's dict."""
    found = _facts(craft(oddity, pki.intermediate).der)
    assert facts_json_text(found) == json_text(facts_to_json(found))


def test_the_lab_chain_and_hostile_text_are_written_as_before(pki: ThrowawayPki) -> None:
    """Every CA of the lab, and facts holding a NUL, escapes, non-BMP text and microseconds."""
    for issued in (pki.root, pki.intermediate):
        found = _facts(issued.der)
        assert facts_json_text(found) == json_text(facts_to_json(found))
    hostile = dataclasses.replace(
        _facts(pki.intermediate.der),
        subject_cn='a\x00b\x1b[2J\u202e\U0001f600\\"',
        not_before_utc=_facts(pki.root.der).not_before_utc.replace(microsecond=123456),
    )
    assert facts_json_text(hostile) == json_text(facts_to_json(hostile))


def test_what_orjson_cannot_write_is_written_by_json(pki: ThrowawayPki) -> None:
    """An integer beyond 64 bits (a hand-built value): json writes it, as before."""
    found = dataclasses.replace(_facts(pki.root.der), key_bits=2**70)
    assert facts_json_text(found) == json_text(facts_to_json(found))
    assert str(2**70) in facts_json_text(found)

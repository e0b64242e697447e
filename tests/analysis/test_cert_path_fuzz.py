"""The ``certvigil cert`` path over mutated files, with the campaign's own generator.

``fuzz/cert_analysis.py`` runs the long campaign on demand; here the same generator
runs with hypothesis's fixed seed (a few seconds), and every input a campaign or a
search has found (``tests/data/fuzz/certificates``) runs again on every run.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from fuzz.cert_analysis import Mutator, load_seeds, run_one, trust_for
from hypothesis import given, settings
from hypothesis import strategies as st

_SEEDS, _ROOT, _INTERMEDIATE = load_seeds()
_TRUST = trust_for(_ROOT)
_EXTRA = (_INTERMEDIATE, _ROOT)
_CORPUS = Path(__file__).resolve().parent.parent / "data" / "fuzz" / "certificates"


@pytest.mark.parametrize("path", sorted(_CORPUS.iterdir()), ids=lambda p: p.name)
def test_found_inputs_are_judged(path: Path) -> None:
    """Each input that once crashed is loaded, judged, rendered and planned cleanly."""
    run_one(path.read_bytes(), _TRUST, _EXTRA)


@settings(max_examples=max(300, settings.default.max_examples))
@given(st.randoms(use_true_random=False))
def test_mutated_files_never_crash(rng: random.Random) -> None:
    """Random and mutated DER/PEM files end in findings or a load error, never a crash."""
    run_one(Mutator(_SEEDS, rng).file(), _TRUST, _EXTRA)

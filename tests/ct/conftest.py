"""Helpers for the CT tests: the real data copied into tests/data/ct (see its README)."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "ct"


def data(relative: str) -> bytes:
    """The bytes of a file under tests/data/ct."""
    return (DATA / relative).read_bytes()


@pytest.fixture(scope="session")
def log_list_bytes() -> bytes:
    """Google's signed log_list.json v80.14, byte for byte."""
    return data("loglist/log_list.json")

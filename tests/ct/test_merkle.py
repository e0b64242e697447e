"""The Merkle tree hash and RFC 9162 proofs, against a direct recursive definition and real logs."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from certvigil.ct.merkle import (
    EMPTY_ROOT,
    fold_subtrees,
    leaf_hash,
    node_hash,
    root_from_leaf_hashes,
    subtree_sizes,
    verify_consistency,
    verify_inclusion,
)
from certvigil.ct.rfc6962 import parse_entry, parse_sth
from tests.ct.conftest import data


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 MTH, written as the recursion the RFC states."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaf_hash(leaves[0])
    split = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(_mth(leaves[:split]), _mth(leaves[split:]))


@pytest.mark.parametrize("count", [*range(20), 31, 32, 33, 255, 256, 257, 1000])
def test_root_matches_the_rfc_recursion(count: int) -> None:
    """The stack-based root equals the RFC's recursive definition for each tree size."""
    leaves = [i.to_bytes(4, "big") for i in range(count)]

    assert root_from_leaf_hashes([leaf_hash(leaf) for leaf in leaves]) == _mth(leaves)


def test_subtrees_fold_to_the_root() -> None:
    """Folding the perfect subtrees given by the size's binary digits gives the root."""
    leaves = [i.to_bytes(4, "big") for i in range(1034)]
    roots = [_mth(leaves[start : start + (1 << height)]) for start, height in subtree_sizes(1034)]

    assert subtree_sizes(1034) == [(0, 10), (1024, 3), (1032, 1)]
    assert fold_subtrees(roots) == _mth(leaves)
    assert fold_subtrees([]) == EMPTY_ROOT


def _b64s(values: list[str]) -> list[bytes]:
    return [base64.b64decode(v) for v in values]


def test_real_inclusion_proof_verifies_and_a_wrong_index_does_not() -> None:
    """Icarus entry 120,000,000 is included in its signed tree of size 129,721,434."""
    answer = json.loads(
        data("rfc6962/icarus/get-entry-and-proof_leaf_index_120000000_tree_size_129721434.json")
    )
    sth = parse_sth(data("rfc6962/icarus/get-sth_tree_size_129721434.json"))
    entry = parse_entry(
        120000000, base64.b64decode(answer["leaf_input"]), base64.b64decode(answer["extra_data"])
    )
    path = _b64s(answer["audit_path"])

    assert verify_inclusion(entry.leaf_hash, 120000000, sth.tree_size, path, sth.root_hash)
    assert not verify_inclusion(entry.leaf_hash, 120000001, sth.tree_size, path, sth.root_hash)
    assert not verify_inclusion(entry.leaf_hash, 120000000, sth.tree_size, path[:-1], sth.root_hash)


@pytest.mark.parametrize(
    ("log", "first", "second"),
    [("icarus", 129596132, 129721434), ("argon2027h1", 384065451, 384071894)],
)
def test_real_consistency_proofs_verify(log: str, first: int, second: int) -> None:
    """The real consistency proofs link the two signed tree heads; a changed node breaks it."""
    old = parse_sth(data(f"rfc6962/{log}/get-sth_tree_size_{first}.json"))
    new = parse_sth(data(f"rfc6962/{log}/get-sth_tree_size_{second}.json"))
    body = data(f"rfc6962/{log}/get-sth-consistency_first_{first}_second_{second}.json")
    proof = _b64s(json.loads(body)["consistency"])

    assert verify_consistency(first, second, proof, old.root_hash, new.root_hash)
    proof[3] = bytes(32)
    assert not verify_consistency(first, second, proof, old.root_hash, new.root_hash)


@given(size=st.integers(1, 80), data_=st.data())
def test_generated_proofs_verify(size: int, data_: st.DataObject) -> None:
    """Proofs built from the recursion verify for every index and earlier size."""
    leaves = [i.to_bytes(4, "big") for i in range(size)]
    index = data_.draw(st.integers(0, size - 1))
    first = data_.draw(st.integers(1, size))

    def path(m: int, subset: list[bytes]) -> list[bytes]:
        if len(subset) <= 1:
            return []
        k = 1 << ((len(subset) - 1).bit_length() - 1)
        if m < k:
            return [*path(m, subset[:k]), _mth(subset[k:])]
        return [*path(m - k, subset[k:]), _mth(subset[:k])]

    def subproof(m: int, subset: list[bytes], whole: bool) -> list[bytes]:
        if m == len(subset):
            return [] if whole else [_mth(subset)]
        k = 1 << ((len(subset) - 1).bit_length() - 1)
        if m <= k:
            return [*subproof(m, subset[:k], whole), _mth(subset[k:])]
        return [*subproof(m - k, subset[k:], False), _mth(subset[:k])]

    root = _mth(leaves)
    assert verify_inclusion(leaf_hash(leaves[index]), index, size, path(index, leaves), root)
    proof = subproof(first, leaves, True)
    assert verify_consistency(first, size, proof, _mth(leaves[:first]), root)

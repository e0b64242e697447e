"""The RFC 6962 Merkle tree hash (RFC 9162 §2.1.1), from leaf hashes or from subtrees.

leaf hash = SHA-256(0x00 ‖ leaf); node = SHA-256(0x01 ‖ left ‖ right). The tree of
``n`` leaves splits at the largest power of two below ``n``, so its root is a fold, right
to left, of the roots of the perfect subtrees that the binary digits of ``n`` give
(``subtree_sizes``): that is what lets a static log's root be recomputed from its tiles.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    """SHA-256(0x00 ‖ leaf): the hash of a MerkleTreeLeaf."""
    return _sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right): an interior node."""
    return _sha256(b"\x01" + left + right).digest()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of a tree whose leaf hashes are ``hashes`` (any count)."""
    if not hashes:
        return EMPTY_ROOT
    # A stack of (height, hash) perfect subtrees, merged as equal heights meet: the
    # "compact range" of the leaves so far, O(log n) memory.
    stack: list[tuple[int, bytes]] = []
    for value in hashes:
        height = 0
        while stack and stack[-1][0] == height:
            value = node_hash(stack.pop()[1], value)
            height += 1
        stack.append((height, value))
    return fold_subtrees([h for _, h in stack])


def fold_subtrees(roots: Sequence[bytes]) -> bytes:
    """Combine the roots of the perfect subtrees of a tree (left to right) into its root."""
    if not roots:
        return EMPTY_ROOT
    value = roots[-1]
    for left in reversed(roots[:-1]):
        value = node_hash(left, value)
    return value


def subtree_sizes(tree_size: int) -> list[tuple[int, int]]:
    """The perfect subtrees of a tree of ``tree_size`` leaves, as (first leaf, height)."""
    found: list[tuple[int, int]] = []
    start = 0
    for height in range(tree_size.bit_length() - 1, -1, -1):
        if tree_size & (1 << height):
            found.append((start, height))
            start += 1 << height
    return found


def verify_inclusion(
    leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """Whether ``proof`` puts leaf hash ``leaf`` at ``index`` under ``root`` (RFC 9162 §2.1.3.2)."""
    if index >= tree_size or index < 0:
        return False
    fn, sn, value = index, tree_size - 1, leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            value = node_hash(sibling, value)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            value = node_hash(value, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and value == root


def verify_consistency(
    first: int, second: int, proof: Sequence[bytes], first_root: bytes, second_root: bytes
) -> bool:
    """Whether ``proof`` makes ``first_root`` a prefix of ``second_root`` (RFC 9162 §2.1.4.2)."""
    if first < 0 or first > second:
        return False
    if first == second:
        return not proof and first_root == second_root
    if first == 0:
        return not proof
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    if not path:
        return False
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for node in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(node, fr)
            sr = node_hash(node, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, node)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == first_root and sr == second_root

"""How the store compresses what it keeps whole: observations and CRLs.

New rows are Zstandard frames (level 1); rows written by earlier versions of
certvigil are zlib streams and are still read. The two are told apart by the Zstandard
frame's magic number, which no zlib stream starts with (a zlib stream's first byte
has 8, deflate, in its low four bits; Zstandard's first byte is 0x28).

Why Zstandard: the stored observation is mostly base64 DER and random nonces. On
that data zlib at level 1 and Zstandard at level 1 reach the same size (the entropy
coder recovers base64's wasted bits either way), but Zstandard compresses about four
times faster and decompresses about eight times faster; compression was the largest
single cost of recording a report (docs/store.md).
"""

from __future__ import annotations

import threading
import zlib

import zstandard

__all__ = ["PackingError", "pack", "unpack"]

LEVEL = 1
"""Zstandard level of stored observations and CRLs."""

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 256 * 1024


class PackingError(ValueError):
    """Stored bytes that do not decompress, or decompress beyond the bound."""


class _Contexts(threading.local):
    """One compressor and one decompressor per thread: their contexts cost more to
    make than a small document costs to compress, and they are not thread-safe."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=LEVEL)
        self.decompressor = zstandard.ZstdDecompressor()


_CONTEXTS = _Contexts()


def pack(data: bytes) -> bytes:
    """``data`` as one Zstandard frame that records its own size."""
    return _CONTEXTS.compressor.compress(data)


def unpack(packed: bytes, max_bytes: int) -> bytes:
    """The bytes :func:`pack` (or an older zlib writer) stored.

    Args:
        packed: The stored bytes.
        max_bytes: Largest result accepted: a bound against a damaged or hostile row.

    Raises:
        PackingError: Not a Zstandard frame or zlib stream, damaged, or larger than
            ``max_bytes`` once decompressed.
    """
    if packed[:4] == _ZSTD_MAGIC:
        return _unpack_zstd(packed, max_bytes)
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(packed, max_bytes)
    except zlib.error as exc:
        raise PackingError(f"not compressed data: {exc}") from None
    if inflate.unconsumed_tail:
        raise PackingError(f"more than {max_bytes} bytes once decompressed")
    if not inflate.eof:
        raise PackingError("the compressed data is cut short")
    return raw


def _unpack_zstd(packed: bytes, max_bytes: int) -> bytes:
    decompressor = _CONTEXTS.decompressor
    try:
        size = zstandard.frame_content_size(packed)
        if size > max_bytes:
            raise PackingError(f"more than {max_bytes} bytes once decompressed")
        if size >= 0:
            # The frame states its size; a frame that decompresses to more is an error.
            return decompressor.decompress(packed)
        # A frame written without its size (not by pack): read it in bounded steps.
        parts: list[bytes] = []
        total = 0
        with decompressor.stream_reader(packed) as reader:
            while chunk := reader.read(_CHUNK):
                total += len(chunk)
                if total > max_bytes:
                    raise PackingError(f"more than {max_bytes} bytes once decompressed")
                parts.append(chunk)
        return b"".join(parts)
    except zstandard.ZstdError as exc:
        raise PackingError(f"not compressed data: {exc}") from None

"""Compression of what the store keeps whole: round trips, old zlib rows, bounds."""

from __future__ import annotations

import os
import zlib

import pytest
import zstandard

from certvigil.store.packing import PackingError, pack, unpack

DOCUMENT = b'{"format":"certvigil.observation/1","observation":{}}' + os.urandom(3000)


def test_round_trip() -> None:
    """What is packed comes back exactly, empty bytes included."""
    for data in (DOCUMENT, b"", b"x" * 100_000):
        assert unpack(pack(data), len(data)) == data


def test_zlib_streams_are_still_read() -> None:
    """Rows written zlib-compressed by earlier versions read back."""
    assert unpack(zlib.compress(DOCUMENT, 1), len(DOCUMENT)) == DOCUMENT


@pytest.mark.parametrize(
    "packed",
    [
        pytest.param(pack(b" " * 5000), id="zstd-stating-its-size"),
        pytest.param(
            zstandard.ZstdCompressor(write_content_size=False).compress(b" " * 5000),
            id="zstd-without-its-size",
        ),
        pytest.param(zlib.compress(b" " * 5000, 9), id="zlib"),
    ],
)
def test_more_than_the_bound_is_refused(packed: bytes) -> None:
    """A blob that inflates beyond the bound is refused, however it is framed."""
    assert unpack(packed, 5000) == b" " * 5000
    with pytest.raises(PackingError, match="more than 4999 bytes"):
        unpack(packed, 4999)


def test_a_frame_lying_about_its_size_is_refused() -> None:
    """A frame whose header states fewer bytes than it holds does not decompress."""
    packed = bytearray(pack(b"abc" * 1000))
    assert zstandard.frame_content_size(bytes(packed)) == 3000
    # Frame header: magic, descriptor byte (FCS field size in its top bits), then the
    # size; with a 2-byte field the value is stored minus 256.
    header = zstandard.get_frame_parameters(bytes(packed))
    assert header.content_size == 3000
    descriptor = packed[4]
    assert descriptor >> 6 == 1  # 2-byte size field
    offset = 5 if descriptor & 0x20 else 6
    packed[offset : offset + 2] = (1000 - 256).to_bytes(2, "little")
    assert zstandard.frame_content_size(bytes(packed)) == 1000
    with pytest.raises(PackingError, match="not compressed data"):
        unpack(bytes(packed), 1 << 20)


@pytest.mark.parametrize(
    "packed",
    [b"", b"not compressed", pack(DOCUMENT)[:-10], zlib.compress(DOCUMENT)[:-10]],
    ids=["empty", "garbage", "zstd-cut-short", "zlib-cut-short"],
)
def test_damaged_bytes_are_refused(packed: bytes) -> None:
    """Anything that is not a whole frame or stream is a PackingError, not a crash."""
    with pytest.raises(PackingError):
        unpack(packed, 1 << 20)

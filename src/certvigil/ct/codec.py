"""A bounded reader for the TLS presentation language that CT structures use.

Every read checks the bytes that remain, so a length field can never point past the
input; a short or overlong input raises ``DecodeError`` saying which field and where.
"""

from __future__ import annotations


class DecodeError(ValueError):
    """Bytes that do not hold the structure being read (internal to the CT parsers)."""


class Reader:
    """Reads big-endian integers and length-prefixed byte strings from ``data``."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        """How many bytes are left to read."""
        return self.end - self.pos

    def _take(self, count: int, field: str) -> int:
        start = self.pos
        if count > self.end - start:
            raise DecodeError(
                f"{field} at byte {start} needs {count} bytes, only {self.end - start} left"
            )
        self.pos = start + count
        return start

    def uint(self, size: int, field: str) -> int:
        """An unsigned integer of ``size`` bytes."""
        start = self._take(size, field)
        return int.from_bytes(self.data[start : start + size], "big")

    def fixed(self, size: int, field: str) -> bytes:
        """Exactly ``size`` bytes."""
        start = self._take(size, field)
        return self.data[start : start + size]

    def opaque(self, length_size: int, field: str, *, minimum: int = 0) -> bytes:
        """A byte string preceded by a ``length_size``-byte length (``<minimum..2^n-1>``)."""
        data, pos, end = self.data, self.pos, self.end
        if length_size > end - pos:
            raise DecodeError(
                f"length of {field} at byte {pos} needs {length_size} bytes, only {end - pos} left"
            )
        start = pos + length_size
        length = int.from_bytes(data[pos:start], "big")
        if length < minimum:
            raise DecodeError(f"{field} is {length} bytes, shorter than the minimum {minimum}")
        stop = start + length
        if stop > end:
            raise DecodeError(
                f"{field} at byte {start} needs {length} bytes, only {end - start} left"
            )
        self.pos = stop
        return data[start:stop]

    def expect_end(self, what: str) -> None:
        """Raise unless every byte has been read."""
        if self.pos != self.end:
            raise DecodeError(f"{self.end - self.pos} unexpected bytes after {what}")

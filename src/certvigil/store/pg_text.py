"""Text bound for PostgreSQL, whose text types cannot hold a NUL character.

Certificates and servers are hostile: a common name may hold a NUL (the null-prefix
certificates, ``www.bank.example\\0.evil.example``), and so may a DNS name in a
subjectAltName, a server's banner or the error it causes. SQLite keeps such text as it
is. PostgreSQL refuses the whole statement ("text fields cannot contain NUL"), which
would lose every report written with it. On PostgreSQL each NUL is therefore written as
the four characters ``\\x00``, the escape ``visible`` shows a NUL as anyway.

Needs psycopg (the ``postgres`` extra); imported only for a PostgreSQL store.
"""

from __future__ import annotations

from typing import Any

from psycopg.abc import Buffer
from psycopg.types.string import StrDumperUnknown

from certvigil.store.driver import NUL_AS

__all__ = ["NulFreeTextDumper", "register_nul_free_text"]


class NulFreeTextDumper(StrDumperUnknown):
    """psycopg's default dumper for ``str`` (text format, type left to the server), with
    each NUL written as :data:`NUL_AS` instead of refused."""

    def dump(self, obj: str) -> Buffer | None:
        if "\x00" in obj:
            obj = obj.replace("\x00", NUL_AS)
        return super().dump(obj)


def register_nul_free_text(dbapi_connection: Any) -> None:
    """Make ``dbapi_connection`` (a psycopg connection) write strings through
    :class:`NulFreeTextDumper`; arrays of strings use it for their items too."""
    dbapi_connection.adapters.register_dumper(str, NulFreeTextDumper)

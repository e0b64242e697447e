"""The dashboard's tables: users who log in (with a role), their sessions, and failed-login
counters.

They share the declarative ``Base`` (and so the metadata and migrations) of
``store.models``. Passwords are stored only as argon2 hashes, session tokens only as
their SHA-256, so a copy of the database lets no one log in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from certvigil.store.models import CERTIFICATES, ONLY_ON_DIALECT, Base, IdType


class DashboardUser(Base):
    """A person who may log in to the dashboard."""

    __tablename__ = "dashboard_users"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    created_at_utc: Mapped[datetime]
    # "admin" may acknowledge and resolve alerts, "viewer" only reads (migration 0014;
    # users from before it keep what they could do).
    role: Mapped[str] = mapped_column(String(10), server_default="admin")


class DashboardSession(Base):
    """A logged-in browser: the SHA-256 of its cookie, its CSRF token, its expiry."""

    __tablename__ = "dashboard_sessions"

    token_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("dashboard_users.id", ondelete="CASCADE"), index=True
    )
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at_utc: Mapped[datetime]
    expires_at_utc: Mapped[datetime] = mapped_column(index=True)


class LoginThrottle(Base):
    """Failed logins for one user name or one client address within the current window.

    ``key`` is ``user:<name>`` or ``addr:<address>``; a row in the database rather than
    process memory, so that every server worker counts the same failures.
    """

    __tablename__ = "dashboard_login_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    window_start_utc: Mapped[datetime]


def _table(model: type[Base]) -> Table:
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


DASHBOARD_USERS = _table(DashboardUser)
DASHBOARD_SESSIONS = _table(DashboardSession)
LOGIN_THROTTLE = _table(LoginThrottle)


# The overview counts leaves per issuer: on SQLite, reading the issuer from this index
# instead of the certificate rows (which carry the facts and DER) takes a third of the
# time. SQLite only: PostgreSQL limits an index entry to about 2.7 kB, and an issuer
# DN is outside data of any length.
CERTIFICATE_ISSUER_INDEX = Index(
    "ix_certificates_issuer_cover",
    CERTIFICATES.c.sha256_hex,
    CERTIFICATES.c.issuer_cn,
    CERTIFICATES.c.issuer,
    info={ONLY_ON_DIALECT: "sqlite"},
).ddl_if(dialect="sqlite")

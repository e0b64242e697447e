"""The CT watch's liveness checks: each re-check of a found name, with its network (AS).

One row per check (name, time, addresses, HTTPS status, title, AS, error), so the
history of a look-alike going live, moving or going dark is kept; rows belong to their
finding and go with it. Same declarative base and naming convention as ``store.models``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from certvigil.store.models import Base, IdType, _table


class CtLivenessCheckRow(Base):
    """One liveness check of one name of a finding.

    ``asn`` and its fields are ``None`` when no source knew the address (or it was not
    looked up); ``error`` says what stopped the check (``""``: it answered).
    """

    __tablename__ = "ct_liveness_checks"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    finding_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("ct_findings.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(255))
    checked_at_utc: Mapped[datetime] = mapped_column(index=True)
    addresses: Mapped[list[str]] = mapped_column(JSON)
    address: Mapped[str | None] = mapped_column(String(64))
    https_status: Mapped[int | None] = mapped_column(Integer)
    title: Mapped[str | None] = mapped_column(Text)
    asn: Mapped[int | None] = mapped_column(BigInteger)
    asn_prefix: Mapped[str | None] = mapped_column(String(64))
    asn_country: Mapped[str | None] = mapped_column(String(16))
    asn_name: Mapped[str | None] = mapped_column(Text)
    asn_source: Mapped[str | None] = mapped_column(String(8))
    error: Mapped[str] = mapped_column(Text)


CT_LIVENESS_CHECKS = _table(CtLivenessCheckRow)

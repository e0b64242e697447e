"""CRLs and OCSP responses, stored once and referenced by the observations that used them.

A CRL is shared by every endpoint under its issuer: a fleet of 10,000 endpoints stores
it once per issue (keyed by the SHA-256 of its DER), and each observation refers to it
by digest. Shares the declarative ``Base`` (and so the metadata and migrations) of
``store.models``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from certvigil.store.models import Base, IdType


class RevocationDocument(Base):
    """One CRL or OCSP response exactly as fetched (or stapled)."""

    __tablename__ = "revocation_documents"

    sha256_hex: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    """``crl`` or ``ocsp``."""
    url: Mapped[str | None] = mapped_column(Text)
    fetched_at_utc: Mapped[datetime]
    next_update_utc: Mapped[datetime | None]
    der_z: Mapped[bytes] = mapped_column(LargeBinary)
    """The DER, compressed (``store.packing``)."""


class ObservationDocument(Base):
    """An observation used a revocation document (the reference, not a copy)."""

    __tablename__ = "observation_documents"

    observation_id: Mapped[int] = mapped_column(
        IdType, ForeignKey("observations.id", ondelete="CASCADE"), primary_key=True
    )
    document_sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("revocation_documents.sha256_hex"), primary_key=True, index=True
    )


def _table(model: type[Base]) -> Table:
    table = model.__table__
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not mapped to a table")
    return table


REVOCATION_DOCUMENTS = _table(RevocationDocument)
OBSERVATION_DOCUMENTS = _table(ObservationDocument)

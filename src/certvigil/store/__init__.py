"""The inventory and history store: SQLAlchemy models, migrations, queries, the outbox.

Start with :func:`open_store`; see ``docs/store.md`` for the schema and the default path.
"""

from __future__ import annotations

from certvigil.store import ct_liveness_models as _ct_liveness_models  # noqa: F401
from certvigil.store import ct_models as _ct_models  # noqa: F401  (registers the CT tables)
from certvigil.store import dashboard_models  # noqa: F401  (registers its tables)
from certvigil.store import revocation_models as _revocation_models  # noqa: F401 - its tables join the metadata
from certvigil.store import server_models as _server_models  # noqa: F401 (its tables)
from certvigil.store.api import Store, open_store
from certvigil.store.engine import DATABASE_URL_ENV, default_database_path
from certvigil.store.records import (
    AlertRecord,
    AlertState,
    DeliveryRecord,
    DeliveryStatus,
    DeploymentRecord,
    EndpointRecord,
    InventoryRow,
    ObservationId,
    ObservationRecord,
    ObservationStatus,
)

__all__ = [
    "DATABASE_URL_ENV",
    "AlertRecord",
    "AlertState",
    "DeliveryRecord",
    "DeliveryStatus",
    "DeploymentRecord",
    "EndpointRecord",
    "InventoryRow",
    "ObservationId",
    "ObservationRecord",
    "ObservationStatus",
    "Store",
    "default_database_path",
    "open_store",
]

"""``GET /metrics`` on ``certvigil serve``: the inventory's state for Prometheus.

The same families as ``certvigil exporter``'s ``/metrics`` with a database (the
inventory, the CT watch's logs, the distributed scan's workers), read from the server's
store. It needs a key with the ``read`` scope, as every read of the inventory does:
Prometheus sends it with ``authorization: {credentials_file: …}`` (docs/monitoring.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from certvigil.integrations.prometheus_more import INVENTORY_EXTRAS
from certvigil.integrations.prometheus_store import render_inventory_metrics
from certvigil.server.app import ServerState, state_dependency
from certvigil.server.auth import READERS, SCOPES_EXTENSION, require
from certvigil.server.keys import Principal

router = APIRouter()

EXPOSITION = "text/plain; version=0.0.4; charset=utf-8"


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Inventory metrics in Prometheus' text format",
    openapi_extra={SCOPES_EXTENSION: sorted(s.value for s in READERS)},
)
async def metrics(
    _principal: Annotated[Principal, Depends(require(*READERS))],
    state: Annotated[ServerState, Depends(state_dependency)],
) -> PlainTextResponse:
    text = await run_in_threadpool(
        render_inventory_metrics, state.store, now=state.clock(), extra_sources=INVENTORY_EXTRAS
    )
    return PlainTextResponse(text, media_type=EXPOSITION)

"""``/api/v1/alerts/stream``: alert events live, over WebSocket or Server-Sent Events.

Each message is one event as JSON (``id``, ``event``, ``alert_id``, ``at``, ``alert``,
``detail``). ``?after=ID`` (or SSE's ``Last-Event-ID``) first replays every event after
that id, in order, then follows live; without it only new events are sent. A client
that does not read for ``SEND_DEADLINE_S`` is disconnected (it resumes with ``after``),
so one stuck client never holds the server's memory or other clients back.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from starlette.websockets import WebSocketState

from certvigil.server.app import ServerState, state_dependency
from certvigil.server.auth import (
    READERS,
    SCOPES_EXTENSION,
    authenticate_async,
    check_scope,
    require,
)
from certvigil.server.errors import ApiError
from certvigil.server.keys import Principal

router = APIRouter()

SEND_DEADLINE_S = 10.0
"""Longest wait for one message to leave before the client is dropped."""

SSE_KEEPALIVE_S = 15.0
"""An SSE comment is sent after this much silence, so dead peers are noticed."""

_ALLOWED = frozenset(READERS)


@router.get(
    "/alerts/stream",
    summary="Alert events as Server-Sent Events (Accept: text/event-stream)",
    openapi_extra={
        SCOPES_EXTENSION: sorted(s.value for s in READERS),
        "description": "The same stream is served over WebSocket at this path.",
    },
    tags=["alerts"],
    response_model=None,
)
async def alert_stream_sse(
    request: Request,
    _principal: Annotated[Principal, Depends(require(*READERS))],
    state: Annotated[ServerState, Depends(state_dependency)],
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
) -> StreamingResponse:
    """Replays events after ``after`` then streams live ones."""
    if "text/event-stream" not in request.headers.get("accept", ""):
        raise ApiError(
            406,
            "not_acceptable",
            "ask with Accept: text/event-stream, or open a WebSocket at this path",
        )
    if after is None and last_event_id is not None:
        if not last_event_id.isdigit():
            raise ApiError(400, "bad_request", "Last-Event-ID: not an event id")
        after = int(last_event_id)

    async def events() -> AsyncIterator[str]:
        yield ": certvigil alert stream\n\n"
        follower = state.hub.follow(after)
        pending: asyncio.Task[Any] | None = None
        try:
            while True:
                if pending is None:
                    pending = asyncio.ensure_future(anext(follower))
                done, _ = await asyncio.wait({pending}, timeout=SSE_KEEPALIVE_S)
                if not done:
                    yield ": keep-alive\n\n"
                    continue
                event = pending.result()
                pending = None
                yield f"id: {event.id}\nevent: {event.event}\ndata: {state.hub.text(event)}\n\n"
        finally:
            # The follower may be mid-step in ``pending``: it must finish being
            # cancelled before the generator can be closed.
            if pending is not None:
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)
            await follower.aclose()

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.websocket("/alerts/stream")
async def alert_stream_ws(
    websocket: WebSocket,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> None:
    """Replays events after ``after`` then streams live ones, one JSON text per event."""
    try:
        principal = await authenticate_async(websocket)
        check_scope(principal, _ALLOWED)
    except ApiError as exc:
        # Before accept, this answers the upgrade with HTTP 403 (401 cannot be sent).
        await websocket.close(code=4401 if exc.status == 401 else 4403, reason=exc.message)
        return
    state: ServerState = websocket.app.state.server
    await websocket.accept()

    async def send() -> None:
        async for event in state.hub.follow(after):
            # asyncio.timeout rather than wait_for, which makes a task per message:
            # one alert to a thousand clients is a thousand sends.
            async with asyncio.timeout(SEND_DEADLINE_S):
                await websocket.send_text(state.hub.text(event))

    async def receive() -> None:
        # The client sends nothing we need; reading notices that it left.
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return

    tasks = [asyncio.create_task(send()), asyncio.create_task(receive())]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            with contextlib.suppress(WebSocketDisconnect, TimeoutError, RuntimeError):
                task.result()
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await task
        if websocket.client_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError):
                await websocket.close()

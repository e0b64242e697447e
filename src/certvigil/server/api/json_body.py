"""Request bodies parsed by orjson.

An agent's batch is a JSON document of a megabyte or more (a hundred observations
with their certificates in base64); Starlette parses it with ``json``, which took as
long as judging the batch's certificates. orjson reads the same JSON several times
faster. What it refuses and ``json`` takes (NaN, Infinity, numbers beyond a double's
range, lone surrogates) goes to ``json``, so a body is accepted or refused as before
and a bad item is still named by the readers. One difference remains: orjson reads
an integer beyond 64 bits as a float, which every field that wants an integer then
refuses, where ``json`` kept it exact; no field of the API takes such an integer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.routing import APIRoute

__all__ = ["FastJsonRoute"]


class _FastJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = orjson.loads(body)
            except orjson.JSONDecodeError:
                # json.JSONDecodeError from here is FastAPI's 422 "JSON decode error".
                self._json = json.loads(body)
        return self._json


class FastJsonRoute(APIRoute):
    """A route whose JSON body is parsed by orjson (``APIRouter(route_class=...)``)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(_FastJsonRequest(request.scope, request.receive))

        return handle

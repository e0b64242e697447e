"""The app for ``uvicorn --factory`` in each worker process of ``certvigil serve --workers N``.

Each worker reads the configuration named by ``CERTVIGIL_SERVE_CONFIG`` and opens its
own connection pool; they share the stream through the event table.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from certvigil.config.loading import load_config
from certvigil.server.app import create_app
from certvigil.server.dashboard.wiring import attach_dashboard
from certvigil.store import open_store

CONFIG_ENV = "CERTVIGIL_SERVE_CONFIG"
"""The configuration file the worker processes read."""


def app_from_environment() -> FastAPI:
    """The server app for the configuration named in ``CERTVIGIL_SERVE_CONFIG``."""
    loaded = load_config(os.environ[CONFIG_ENV])
    store = open_store(loaded.database_url)
    app = create_app(loaded, store, announce_ready=True)
    attach_dashboard(app, store)
    return app

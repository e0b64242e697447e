"""The web dashboard: server-rendered pages over the store, with users and sessions.

Include :func:`certvigil.server.dashboard.router.dashboard_router` in the server's app.
This package's ``__init__`` imports nothing heavy, so ``certvigil users`` can hash
passwords without loading the web framework.
"""

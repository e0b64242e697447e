"""The server's routers: ``v1`` (the versioned API), ``stream`` (live alerts), ``sslscout``."""

"""The central server: REST API, live alert stream and web dashboard."""

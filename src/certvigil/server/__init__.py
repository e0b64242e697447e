"""The central server: REST API, API keys, the live alert stream (``certvigil serve``) and
the web dashboard."""

"""``certvigil agent``: scans inside a network and reports observations to the server."""

"""The network edge of the CT watch: a polite HTTP client for each log, the RFC 6962
and static-ct-api readers on it, and the tailer.

Unlike the pure modules of ``certvigil.ct`` this package does I/O (httpx, asyncio) and
reads the clock; it verifies what it reads with the pure functions there.
"""

"""Certificate Transparency: the pure parts of the CT watch (docs/ct.md).

Parsers and verifiers for what CT logs serve (the log list, RFC 6962 JSON answers,
static-ct-api checkpoints and tiles), the Merkle tree hash, name extraction and the
watch-list matcher. Nothing here opens a socket, touches a database or reads the clock:
the callers pass bytes in and ``now`` when time matters.
"""

"""Fuzz campaigns: scripts that feed generated inputs to certvigil and count crashes.

Run them from the repository root (``fuzz/README.md``); the test suite reuses their
input generators with hypothesis's fixed seed.
"""

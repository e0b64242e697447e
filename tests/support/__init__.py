"""Test-only servers and launchers: fault servers, an OCSP responder, a throwaway PostgreSQL."""

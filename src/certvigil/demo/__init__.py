"""What `certvigil demo` runs: a throwaway PKI and TLS servers on loopback with planted faults."""

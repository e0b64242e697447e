"""Throwaway PKIs and real TLS servers on loopback, for the demo, tests and benchmarks."""

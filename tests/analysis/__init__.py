"""Tests of the pure analysis layer: facts, chains, hostnames, findings, reports."""

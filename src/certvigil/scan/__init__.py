"""Scan orchestration: the scanner, its worker processes, and which checks run."""

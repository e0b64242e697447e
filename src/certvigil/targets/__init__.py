"""Targets: parsing specs, expanding them, and the sources they come from."""

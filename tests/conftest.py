"""Fixtures shared by every test package; area fixtures live in each sub-package."""

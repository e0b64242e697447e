"""Tests of the inventory and history store, on SQLite and PostgreSQL."""

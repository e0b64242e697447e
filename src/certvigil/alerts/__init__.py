"""Alerts: pure rules, the alert lifecycle, routing, the delivery outbox and its channels."""

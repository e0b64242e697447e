"""Scans spread over Celery workers: sharding, the shard task, the scheduler (docs/scaling.md)."""

"""The Celery application both sides share: broker, queue and delivery guarantees.

* ``task_acks_late`` with ``task_reject_on_worker_lost``: a shard is acknowledged only
  after its worker finished it, so a worker that dies mid-shard leaves it to another;
* ``worker_prefetch_multiplier = 1``: a worker holds one shard at a time, so a dead
  worker strands one shard, not a queue of them;
* Redis's ``visibility_timeout``: how long an unacknowledged shard waits before the
  broker hands it out again (must exceed the time a shard takes);
* JSON messages only: a message is data (``distributed.shards.Shard.from_json``), never
  code to unpickle.
"""

from __future__ import annotations

from celery import Celery

from certvigil.config.model import DistributedSettings

TASK_NAME = "certvigil.scan_shard"
"""The task every shard is sent to."""


def make_app(settings: DistributedSettings) -> Celery:
    """A Celery app for ``settings``' broker (no result backend: state is in the store)."""
    app = Celery("certvigil", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        task_default_queue=settings.queue,
        broker_transport_options={"visibility_timeout": settings.visibility_timeout_s},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=10.0,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
    )
    return app

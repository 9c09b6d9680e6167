"""The Celery app: eager in-process without a broker (quick start, tests), a real worker with CELERY_BROKER_URL.

Every `CELERY_*` setting configures it, the beat schedule (`CELERY_BEAT_SCHEDULE`) included.
"""

import os
from typing import Any

from celery import Celery, Task
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("closeloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Celery's Django fixup closes Django's connection pool itself, not just the connection, before and after every task
# in a prefork child (celery/celery#10554): each task then built a new pool and opened new PostgreSQL sessions, about
# 100 a second under the soak's load, each a backend to fork and warm. With a reuse count it closes only every
# 2 x this many tasks; the handlers below hand the connection back to the pool at each task's edges instead. The
# fixup still closes the pool a child inherits from its parent at fork.
app.conf.update({"CELERY_DB_REUSE_MAX": 2**62})
app.autodiscover_tasks()


@task_prerun.connect
@task_postrun.connect
def connections_return_to_pool(sender: Task | None = None, **kwargs: Any) -> None:
    """What Django does at each request's edges: a connection goes back to the pool, a broken one is discarded.
    Eager tasks run inside their caller's transaction and leave its connection alone."""
    if sender is None or getattr(sender.request, "is_eager", False):
        return
    from django.db import close_old_connections

    close_old_connections()


if app.conf.task_always_eager and not app.conf.broker_url:
    # Eager tasks still take a producer from the pool, which for the default amqp:// URL logs kombu's "No hostname
    # was supplied" on the first task. Nothing is ever sent to the in-memory transport; it is named with a host, or
    # kombu warns the same for it.
    app.conf.broker_url = "memory://localhost/"

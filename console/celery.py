"""The Celery app: eager in-process without a broker (quick start, tests), a real worker with CELERY_BROKER_URL.

Every `CELERY_*` setting configures it, the beat schedule (`CELERY_BEAT_SCHEDULE`) included.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("closeloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

if app.conf.task_always_eager and not app.conf.broker_url:
    # Eager tasks still take a producer from the pool, which for the default amqp:// URL logs kombu's "No hostname
    # was supplied" on the first task. Nothing is ever sent to the in-memory transport; it is named with a host, or
    # kombu warns the same for it.
    app.conf.broker_url = "memory://localhost/"

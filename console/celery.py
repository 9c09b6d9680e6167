"""The Celery app: eager in-process without a broker (quick start, tests), a real worker with CELERY_BROKER_URL."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("closeloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_beat_schedule(sender: Celery, **kwargs: object) -> None:
    from console.periodic import PERIODIC_JOBS

    sender.conf.beat_schedule = PERIODIC_JOBS

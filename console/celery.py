"""The Celery app: eager in-process without a broker (quick start, tests), a real worker with CELERY_BROKER_URL.

Every `CELERY_*` setting configures it, the beat schedule (`CELERY_BEAT_SCHEDULE`) included.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")

app = Celery("closeloop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

"""Running the beat schedule (`settings.CELERY_BEAT_SCHEDULE`) in-process, for `serve_demo`, where there is no beat."""

import logging
import time
from datetime import UTC, datetime

from django.conf import settings

from console.celery import app

logger = logging.getLogger(__name__)


def run_due_jobs(last_runs: dict[str, float]) -> list[str]:
    """Run, in-process, the jobs whose schedule says they are due; `last_runs` carries state between calls."""
    app.loader.import_default_modules()  # autodiscovery is lazy; outside a worker nothing has imported tasks.py yet
    ran = []
    now = time.time()
    for name, job in settings.CELERY_BEAT_SCHEDULE.items():
        last = last_runs.get(name)
        # A job never run is due at once, so the demo's dashboards are fresh from the start.
        if last is not None and not job["schedule"].is_due(datetime.fromtimestamp(last, UTC)).is_due:
            continue
        last_runs[name] = now
        try:
            app.tasks[job["task"]].apply(kwargs=job.get("kwargs", {}))
            ran.append(name)
        except Exception:
            logger.exception("periodic.job_failed", extra={"job": name})
    return ran

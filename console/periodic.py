"""Every periodic job in one table: Celery beat reads it in production, `serve_demo` runs it in-process.

Each entry is a crontab with an expiry shorter than its period, so a backlog after an outage does not pile up runs.
"""

import logging
import time
from datetime import UTC, datetime

from celery.schedules import crontab

logger = logging.getLogger(__name__)

PERIODIC_JOBS: dict[str, dict] = {
    "audit-chain-check": {
        "task": "console.tasks.audit_chain_check",
        "schedule": crontab(minute=17),
        "options": {"expires": 50 * 60},
    },
    "sweep-uncorrelated-batches": {
        "task": "transactions.tasks.sweep_uncorrelated_batches",
        "schedule": crontab(minute="*"),
        "options": {"expires": 50},
    },
    "mark-stalled-transactions": {
        "task": "transactions.tasks.mark_stalled_transactions",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "sweep-unclassified-failures": {
        "task": "exceptions.tasks.sweep_unclassified_failures",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "escalate-cases": {
        "task": "exceptions.tasks.escalate_cases",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "confirm-replays": {
        "task": "exceptions.tasks.confirm_replays",
        "schedule": crontab(minute="*"),
        "options": {"expires": 50},
    },
    "sweep-replays": {
        "task": "exceptions.tasks.sweep_replays",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "evaluate-sla-clocks": {
        "task": "slas.tasks.evaluate_live_clocks",
        "schedule": crontab(minute="*"),
        "options": {"expires": 50},
    },
    "sweep-sla-transactions": {
        "task": "slas.tasks.sweep_recent_transactions",
        "schedule": crontab(minute="*/5"),
        "options": {"expires": 4 * 60},
    },
    "evaluate-volume-monitors": {
        "task": "slas.tasks.evaluate_volume_monitors",
        "schedule": crontab(minute="*"),
        "options": {"expires": 50},
    },
    "decide-evidence-checks": {
        "task": "slas.tasks.decide_evidence_checks",
        "schedule": crontab(minute="*"),
        "options": {"expires": 50},
    },
    "maintain-event-partitions": {
        "task": "transactions.tasks.maintain_event_partitions",
        "schedule": crontab(minute=5),
        "options": {"expires": 50 * 60},
    },
    "apply-ingest-retention": {
        "task": "transactions.tasks.apply_ingest_retention",
        "schedule": crontab(minute=30, hour=2),
        "options": {"expires": 6 * 3600},
    },
}


def run_due_jobs(last_runs: dict[str, float]) -> list[str]:
    """Run, in-process, the jobs whose schedule says they are due; `last_runs` carries state between calls."""
    from console.celery import app

    app.loader.import_default_modules()  # autodiscovery is lazy; outside a worker nothing has imported tasks.py yet
    ran = []
    now = time.time()
    for name, job in PERIODIC_JOBS.items():
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

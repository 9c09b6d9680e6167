"""Thin Celery tasks of the exceptions app: they take ids and call services; running one twice is harmless."""

from dataclasses import asdict

from celery import shared_task

from exceptions import services
from exceptions.models import ExceptionRecord
from transactions.selectors import failed_event_ids_recent


@shared_task(acks_late=True)
def classify_failures(event_ids: list[int]) -> dict:
    return asdict(services.failures_classify(event_ids=event_ids))


@shared_task
def sweep_unclassified_failures(limit: int = 5000) -> int:
    """Failed events whose classification task was lost (the database, not the broker, is the record)."""
    recent = failed_event_ids_recent(limit=limit)
    done = set(ExceptionRecord.objects.filter(event_id__in=recent).values_list("event_id", flat=True))
    missing = [event_id for event_id in recent if event_id not in done]
    for start in range(0, len(missing), 500):
        classify_failures.delay(missing[start : start + 500])
    return len(missing)


@shared_task
def escalate_cases() -> int:
    return len(services.cases_escalate())


@shared_task
def notify_case(case_id: int, kind: str) -> int:
    return services.case_notify(case_id=case_id, kind=kind)

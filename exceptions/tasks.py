"""Thin Celery tasks of the exceptions app: they take ids and call services; running one twice is harmless."""

from dataclasses import asdict

from celery import shared_task

from exceptions import services
from exceptions.models import ExceptionRecord
from transactions.selectors import failed_event_ids_recent


@shared_task(acks_late=True)
def classify_failures(event_ids: list[int]) -> dict:
    outcome = asdict(services.failures_classify(event_ids=event_ids))
    # After the classification has committed: a retry correlated with its failure may already have made it good.
    outcome["resolved_recovered"] = len(services.cases_resolve_recovered_for_events(event_ids=event_ids))
    return outcome


@shared_task(acks_late=True)
def resolve_recovered_cases(txn_ids: list[int]) -> int:
    """After correlation: cases whose every transaction has now completed resolve themselves."""
    return len(services.cases_resolve_recovered(txn_ids=txn_ids))


@shared_task
def sweep_recovered_cases(limit: int = 500) -> int:
    """Periodic: the same, for completed transactions whose task was lost (the database is the record)."""
    return len(services.cases_sweep_recovered(limit=limit))


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
def raise_interface_silence() -> int:
    """Periodic: catalogued interfaces silent past their expected frequency become `platform` cases."""
    return services.interface_silence_raise()


@shared_task
def escalate_cases() -> int:
    return len(services.cases_escalate())


@shared_task
def notify_case(case_id: int, kind: str) -> int:
    notified = services.case_notify(case_id=case_id, kind=kind)
    # A task of its own: a slow or broken webhook receiver must not delay or fail the people's notifications.
    deliver_webhooks.delay(case_id, kind)
    return notified


@shared_task(acks_late=True)
def send_replay(replay_id: str) -> str | None:
    """Redelivery is safe: the replay is claimed by a conditional UPDATE, and a claimed one is never sent again."""
    replay = services.replay_send(replay_id=replay_id)
    return replay.status if replay else None


@shared_task
def confirm_replays() -> int:
    """Periodic: replays confirmed by a success event carrying their id succeed, and their cases resolve."""
    return len(services.replays_confirm())


@shared_task
def sweep_replays() -> dict[str, int]:
    """Periodic: re-enqueue replays whose task was lost; expire stuck and unconfirmed ones."""
    return services.replays_sweep()


@shared_task
def deliver_webhooks(case_id: int, kind: str) -> int:
    """Best effort, like the e-mail beside it: not acks_late, as a redelivery would notify every receiver twice."""
    return services.webhooks_deliver(case_id=case_id, kind=kind)

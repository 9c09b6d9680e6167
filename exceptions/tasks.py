"""Thin Celery tasks of the exceptions app: they take ids and call services; running one twice is harmless."""

from dataclasses import asdict
from datetime import datetime, timedelta

from celery import Task, shared_task
from django.utils import timezone

from exceptions import services
from exceptions.choices import DeliveryStatus, ReplayStatus
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


@shared_task(acks_late=True)
def reconcile_transactions(txn_ids: list[int]) -> dict[str, int]:
    """After correlation: the reconciliation rules on the transactions a batch touched (idempotent)."""
    return services.reconcile_transactions(txn_ids)


@shared_task
def sweep_reconciliation(hours: int = 1, limit: int = 5000) -> dict[str, int]:
    """Periodic: transactions active in the last hour are reconciled again, in case their task was lost (the database
    is the record); what agrees with its stored result costs a read."""
    return services.reconciliation_sweep(since=timezone.now() - timedelta(hours=hours), limit=limit)


@shared_task
def refresh_reconciliation_rollups() -> int:
    """Periodic: rebuild the reconciliation rollups of the days whose results changed (the page reads those days from
    the results until then)."""
    return services.reconciliation_rollups_refresh()


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
def raise_new_interface_notices() -> int:
    """Periodic: interfaces that appeared in traffic and that nobody catalogued become `notice` cases."""
    return services.interface_new_raise()


@shared_task
def escalate_cases() -> int:
    return len(services.cases_escalate())


@shared_task
def notify_case(case_id: int, kind: str) -> int:
    notified = services.case_notify(case_id=case_id, kind=kind)
    # A task of its own: a slow or broken webhook receiver must not delay or fail the people's notifications.
    deliver_webhooks.delay(case_id, kind)
    return notified


def _retry_later(task: Task, moment: datetime) -> None:
    """Ask the broker to run the task again at `moment`. Without a broker (tasks run in-process: the quick start and
    the demo) nothing waits in memory for minutes: the row stays pending with its time, and the periodic sweep
    sends it once that time has passed."""
    if task.request.is_eager:
        return
    raise task.retry(countdown=max((moment - timezone.now()).total_seconds(), 0.0))


@shared_task(bind=True, acks_late=True, max_retries=None)
def send_replay(self: Task, replay_id: str) -> str | None:
    """Redelivery is safe: each attempt claims the replay by a conditional UPDATE, so two deliveries never send it at
    once. A retryable failure puts it back to pending with its next time: retried then (the target's max_attempts
    bounds it, and the sweep re-enqueues a retry whose message was lost)."""
    replay = services.replay_send(replay_id=replay_id)
    if replay is not None and replay.status == ReplayStatus.PENDING and replay.not_before is not None:
        _retry_later(self, replay.not_before)
    return replay.status if replay else None


@shared_task
def confirm_replays() -> int:
    """Periodic: replays confirmed by a success event carrying their id succeed, and their cases resolve."""
    return len(services.replays_confirm())


@shared_task
def sweep_replays() -> dict[str, int]:
    """Periodic: re-enqueue replays and webhook deliveries whose task was lost; expire stuck and unconfirmed
    replays. One beat entry for everything outbound."""
    return {**services.replays_sweep(), **{f"webhook_{k}": v for k, v in services.webhook_deliveries_sweep().items()}}


@shared_task
def deliver_webhooks(case_id: int, kind: str) -> int:
    """Records one delivery per subscribed webhook and enqueues each; not acks_late, as a redelivery would record
    (and so send) every notification twice."""
    return len(services.webhooks_deliver(case_id=case_id, kind=kind))


@shared_task(bind=True, acks_late=True, max_retries=None)
def deliver_webhook(self: Task, delivery_id: str) -> str | None:
    """One attempt of one delivery, claimed first; a failure with attempts left retries at its next time."""
    delivery = services.webhook_delivery_attempt(delivery_id=delivery_id)
    if delivery is not None and delivery.status == DeliveryStatus.PENDING and delivery.next_attempt_at is not None:
        _retry_later(self, delivery.next_attempt_at)
    return delivery.status if delivery else None

"""Outbound webhooks: a signed JSON POST about a case (assigned, escalated, reopened) to every subscribed URL.

Each notification to each webhook is a delivery row, so that its attempts, answers and errors are kept (the delivery
log) and a lost task is found again by the sweep (the database, not the broker, is the record). A delivery is claimed
by a conditional UPDATE before each attempt, and retried with exponential backoff while the receiver fails (any
answer but 2xx, or no answer); its id travels as `Closeloop-Delivery`, so a receiver that sees it twice (a worker
that died after sending) can drop the second. A broken receiver never holds up the others or the people's
notifications: each delivery is a task of its own.
"""

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from console.lib.audit import audit_record
from exceptions import outbound
from exceptions.choices import DeliveryStatus
from exceptions.models import Case, OutboundWebhook, WebhookDelivery
from exceptions.selectors import webhooks_for
from exceptions.services.replays import http_send

logger = logging.getLogger(__name__)

TIMEOUT = 5  # seconds per attempt
DELIVERY_HEADER = "Closeloop-Delivery"
EVENT_HEADER = "Closeloop-Event"
# A delivery still pending this long past its due time lost its task; one claimed this long ago lost its worker.
PENDING_GRACE = timedelta(minutes=2)
SENDING_GRACE = timedelta(minutes=5)
SWEEP_BATCH = 500


def case_document(case: Case) -> dict:
    # PUBLIC_URL (when set) makes the link absolute for receivers such as chat tools; else it is the console path.
    base = str(getattr(settings, "PUBLIC_URL", "") or "").rstrip("/")
    return {
        "id": case.pk,
        "title": case.title,
        "status": case.status,
        "priority": case.priority,
        "queue": case.queue.slug,
        "assignee": case.assignee.get_username() if case.assignee else None,
        "url": f"{base}/cases/{case.pk}/",
    }


def webhook_outbound_request(
    *, webhook: OutboundWebhook, delivery_id: uuid.UUID | str, event: str, body: dict, timestamp: int | None = None
) -> outbound.OutboundRequest:
    """The exact request of one attempt: the same body every time, signed afresh with the attempt's timestamp."""
    return outbound.request_build(
        method="POST",
        url=webhook.url,
        body=outbound.json_body(body),
        headers={DELIVERY_HEADER: str(delivery_id), EVENT_HEADER: event, "User-Agent": "Closeloop-Webhook/1"},
        signing_secret=webhook.signing_secret,
        timestamp=timestamp,
    )


def webhooks_deliver(*, case_id: int, kind: str) -> list[str]:
    """Record one delivery per active webhook subscribed to `kind` and enqueue each; returns the delivery ids."""
    hooks = webhooks_for(kind=kind)
    if not hooks:
        return []
    case = Case.objects.select_related("queue", "assignee").filter(pk=case_id).first()
    if case is None:
        return []
    body = {"event": kind, "case": case_document(case)}
    with transaction.atomic():
        deliveries = WebhookDelivery.objects.bulk_create(
            [WebhookDelivery(webhook=hook, case=case, event=kind, body=body) for hook in hooks]
        )
        ids = [str(d.pk) for d in deliveries]
        transaction.on_commit(lambda: [_deliver_later(i) for i in ids])
    return ids


def _deliver_later(delivery_id: str) -> None:
    # Imported when enqueuing: the tasks module imports the services at load time (see services/notify.py).
    from exceptions.tasks import deliver_webhook

    deliver_webhook.delay(delivery_id)


def _claim(delivery_id: uuid.UUID | str) -> bool:
    return bool(
        WebhookDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, last_attempt_at=timezone.now()
        )
    )


def webhook_delivery_attempt(*, delivery_id: uuid.UUID | str) -> WebhookDelivery | None:
    """One attempt of a claimed delivery; None when another task claimed it first. A failure with attempts left goes
    back to pending with `next_attempt_at` set: the task retries then."""
    if not _claim(delivery_id):
        return None
    delivery = WebhookDelivery.objects.select_related("webhook").get(pk=delivery_id)
    hook = delivery.webhook
    request = webhook_outbound_request(webhook=hook, delivery_id=delivery.pk, event=delivery.event, body=delivery.body)
    if not hook.is_active:
        return _record(delivery, status_code=None, error="the webhook was disabled", duration_ms=None, retry=False)
    if request.problems:
        return _record(delivery, status_code=None, error="; ".join(request.problems), duration_ms=None, retry=False)
    try:
        answer = http_send(request, timeout=TIMEOUT)
    except Exception as exc:  # a URL requests cannot even parse: this receiver fails, never the task's others
        return _record(
            delivery, status_code=None, error=f"not sent: {type(exc).__name__}", duration_ms=None, retry=False
        )
    delivered = answer.status_code is not None and 200 <= answer.status_code < 300
    # A notification is safe to send again (receivers dedupe on the delivery id), so timeouts and 5xx are retried
    # too; a 4xx other than 408/429 says the request itself is wrong, and a malformed URL never gets better.
    transient = answer.retryable or answer.timed_out or (answer.status_code or 0) >= 500
    retry = not delivered and transient and delivery.attempts < hook.max_attempts
    if not delivered:
        logger.warning(
            "webhook.delivery_failed",
            extra={"webhook": hook.pk, "delivery": str(delivery.pk), "http": answer.status_code, "retry": retry},
        )
    return _record(
        delivery,
        status_code=answer.status_code,
        error="" if delivered else answer.outcome,
        duration_ms=answer.duration_ms,
        retry=retry,
    )


def _record(
    delivery: WebhookDelivery, *, status_code: int | None, error: str, duration_ms: int | None, retry: bool
) -> WebhookDelivery:
    now = timezone.now()
    delivered = status_code is not None and 200 <= status_code < 300
    fields: dict[str, Any] = {"response_status": status_code, "duration_ms": duration_ms, "error": error[:300]}
    if delivered:
        fields.update(status=DeliveryStatus.DELIVERED, delivered_at=now, next_attempt_at=None)
    elif retry:
        delay = outbound.retry_delay(delivery.attempts)
        fields.update(status=DeliveryStatus.PENDING, next_attempt_at=now + timedelta(seconds=delay))
        fields["error"] = f"{error}; retry in {delay} s"[:300]
    else:
        fields.update(status=DeliveryStatus.FAILED, next_attempt_at=None)
    WebhookDelivery.objects.filter(pk=delivery.pk, status=DeliveryStatus.SENDING).update(**fields)
    delivery.refresh_from_db()
    return delivery


def webhook_deliveries_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Periodic: re-enqueue deliveries whose task was lost, and put back those whose worker died mid-send (a
    notification may be sent again: receivers dedupe on its delivery id)."""
    now = now or timezone.now()
    stuck = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.SENDING, last_attempt_at__lt=now - SENDING_GRACE
        ).values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    if stuck:
        WebhookDelivery.objects.filter(pk__in=stuck, status=DeliveryStatus.SENDING).update(
            status=DeliveryStatus.PENDING, next_attempt_at=now
        )
    lost = list(
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING)
        .filter(
            Q(next_attempt_at__isnull=True, created_at__lt=now - PENDING_GRACE)
            | Q(next_attempt_at__lt=now - PENDING_GRACE)
            | Q(pk__in=stuck)
        )
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for delivery_id in lost:
        _deliver_later(str(delivery_id))
    if stuck:
        audit_record(
            actor="system:webhooks",
            action="webhook_deliveries.requeued",
            object_type="exceptions.webhookdelivery",
            after={"deliveries": [str(i) for i in stuck]},
        )
    return {"requeued": len(lost), "stuck": len(stuck)}


__all__ = [
    "DELIVERY_HEADER",
    "EVENT_HEADER",
    "case_document",
    "webhook_deliveries_sweep",
    "webhook_delivery_attempt",
    "webhook_outbound_request",
    "webhooks_deliver",
]

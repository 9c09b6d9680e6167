"""Outbound webhooks: a JSON POST about a case (assigned, escalated, reopened) to every subscribed URL.

Delivery is best effort: a webhook that is down or slow is logged and skipped, never raised into the task that
notifies people, so that one broken receiver cannot hold up console notifications or the other receivers.
"""

import hashlib
import hmac
import json
import logging

import requests
from django.conf import settings

from exceptions.models import Case
from exceptions.selectors import webhooks_for

logger = logging.getLogger(__name__)

TIMEOUT = 5  # seconds per webhook; the task delivers to each in turn
SIGNATURE_HEADER = "X-Closeloop-Signature"


def webhook_signature(*, secret: str, body: bytes) -> str:
    """The header value a receiver recomputes over the raw body to check that Closeloop sent it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _case_document(case: Case) -> dict:
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


def webhooks_deliver(*, case_id: int, kind: str) -> int:
    """POST {event, case} to every active webhook subscribed to `kind`; returns how many answered 2xx."""
    hooks = webhooks_for(kind=kind)
    if not hooks:
        return 0
    case = Case.objects.select_related("queue", "assignee").filter(pk=case_id).first()
    if case is None:
        return 0
    body = json.dumps({"event": kind, "case": _case_document(case)}, separators=(",", ":")).encode()
    delivered = 0
    for hook in hooks:
        headers = {"Content-Type": "application/json", "User-Agent": "Closeloop-Webhook/1"}
        if hook.secret:
            headers[SIGNATURE_HEADER] = webhook_signature(secret=hook.secret, body=body)
        try:
            response = requests.post(hook.url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
        except Exception as exc:  # any failure of one receiver (network, bad URL...) is logged, never raised
            logger.warning(
                "webhook.delivery_failed",
                extra={"webhook": hook.pk, "case": case.pk, "kind": kind, "error": type(exc).__name__},
            )
            continue
        if 200 <= response.status_code < 300:
            delivered += 1
        else:
            logger.warning(
                "webhook.delivery_failed",
                extra={"webhook": hook.pk, "case": case.pk, "kind": kind, "http": response.status_code},
            )
    return delivered


__all__ = ["SIGNATURE_HEADER", "webhook_signature", "webhooks_deliver"]

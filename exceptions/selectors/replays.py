"""Reads of replays, replay targets, outbound webhooks and their delivery logs."""

from datetime import datetime

from django.db.models import Count, Q, QuerySet

from exceptions.choices import REPLAY_IN_FLIGHT, ReplayStatus
from exceptions.models import (
    ExceptionRecord,
    OutboundWebhook,
    Replay,
    ReplayTarget,
    WebhookDelivery,
)

# Where a success event names the replay it confirms: the replay's id or the Idempotency-Key we sent, echoed back.
REPLAY_ID_ATTRIBUTES = ("closeloop.replay_id", "idempotency_key")
DELIVERY_LOG_LIMIT = 200


def replay_target_for(*, system: str) -> ReplayTarget | None:
    return ReplayTarget.objects.filter(system=system, is_active=True).first()


def replay_previous(*, occurrence_id: int) -> Replay | None:
    return Replay.objects.filter(occurrence_id=occurrence_id).order_by("-created_at").first()


def replay_in_flight(*, occurrence_id: int) -> Replay | None:
    return Replay.objects.filter(occurrence_id=occurrence_id, status__in=REPLAY_IN_FLIGHT).first()


def _got_through() -> Q:
    # A replay "got through" when a success event confirmed it, or when the target accepted it (2xx) even if no
    # success event followed: the target may well have posted it, so sending it again needs a person's reason.
    return Q(status=ReplayStatus.SUCCEEDED) | Q(response_status__gte=200, response_status__lt=300)


def replay_got_through(*, occurrence_id: int) -> Replay | None:
    """The latest replay of the occurrence that a success event confirmed or its target accepted."""
    return Replay.objects.filter(_got_through(), occurrence_id=occurrence_id).order_by("-created_at").first()


def replay_of_business_key(*, target_id: int, business_key_hash: str) -> Replay | None:
    """The latest replay to this target of the same business object that is in flight or got through."""
    return (
        Replay.objects.filter(target_id=target_id, business_key_hash=business_key_hash)
        .filter(_got_through() | Q(status__in=REPLAY_IN_FLIGHT))
        .select_related("occurrence")
        .order_by("-created_at")
        .first()
    )


def replays_awaiting_success(*, since: datetime) -> dict[str, Replay]:
    """Replays a success event may still confirm, by id text and by Idempotency-Key: those in flight, and those whose
    send looked failed since `since` (a target can process a request and still answer 5xx, or time out after doing
    the work). A key shared by several replays (the same payload sent again) names the latest of them."""
    replays = Replay.objects.filter(
        Q(status__in=[ReplayStatus.SENDING, ReplayStatus.SENT]) | Q(status=ReplayStatus.FAILED, claimed_at__gte=since)
    ).order_by("created_at")
    found: dict[str, Replay] = {}
    for replay in replays:
        found[str(replay.pk)] = replay
        if replay.idempotency_key:
            found[replay.idempotency_key] = replay
    return found


def replay_oldest_unconfirmed_claim(*, since: datetime) -> datetime | None:
    """When the oldest replay that a success event may still confirm was claimed (None: nothing awaits one)."""
    return (
        Replay.objects.filter(
            Q(status__in=[ReplayStatus.SENDING, ReplayStatus.SENT])
            | Q(status=ReplayStatus.FAILED, claimed_at__gte=since)
        )
        .order_by("claimed_at")
        .values_list("claimed_at", flat=True)
        .first()
    )


def occurrence_latest_of_system(*, system: str) -> ExceptionRecord | None:
    """The newest failed event of a system, for a target's dry run."""
    return ExceptionRecord.objects.filter(system=system, event_id__isnull=False).order_by("-occurred_at", "-id").first()


def webhooks_for(*, kind: str) -> list[OutboundWebhook]:
    """Active webhooks subscribed to `kind` (an empty list subscribes to everything); filtered here because SQLite
    cannot ask whether a JSON list contains a value, and there are only a handful of webhooks."""
    return [
        w for w in OutboundWebhook.objects.filter(is_active=True).order_by("id") if not w.events or kind in w.events
    ]


# ---- Configuration pages and API ------------------------------------------------------------------------------------


def replay_target_list() -> QuerySet[ReplayTarget]:
    return ReplayTarget.objects.annotate(replay_count=Count("replays")).order_by("system")


def replay_target_get(*, target_id: int) -> ReplayTarget:
    return ReplayTarget.objects.get(pk=target_id)


def replay_target_log(*, target: ReplayTarget, limit: int = DELIVERY_LOG_LIMIT) -> list[Replay]:
    """The target's latest replays: status, attempts, answer, duration, outcome."""
    return list(Replay.objects.filter(target=target).select_related("case").order_by("-created_at")[:limit])


def webhook_list() -> QuerySet[OutboundWebhook]:
    return OutboundWebhook.objects.annotate(delivery_count=Count("deliveries")).order_by("name", "id")


def webhook_get(*, webhook_id: int) -> OutboundWebhook:
    return OutboundWebhook.objects.get(pk=webhook_id)


def webhook_log(*, webhook: OutboundWebhook, limit: int = DELIVERY_LOG_LIMIT) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(webhook=webhook).order_by("-created_at")[:limit])

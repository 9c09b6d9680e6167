"""Reads of replays and outbound webhooks."""

from datetime import datetime

from django.db.models import Q

from exceptions.choices import ReplayStatus
from exceptions.models import (
    OutboundWebhook,
    Replay,
    ReplayTarget,
)

# Where a success event names the replay it confirms: the id we sent as Idempotency-Key, echoed back as an attribute.
REPLAY_ID_ATTRIBUTES = ("closeloop.replay_id", "idempotency_key")
# The statuses the model's partial unique constraint allows once per occurrence.
REPLAY_IN_FLIGHT = (ReplayStatus.PENDING, ReplayStatus.SENDING, ReplayStatus.SENT)


def replay_target_for(*, system: str) -> ReplayTarget | None:
    return ReplayTarget.objects.filter(system=system, is_active=True).first()


def replay_previous(*, occurrence_id: int) -> Replay | None:
    return Replay.objects.filter(occurrence_id=occurrence_id).order_by("-created_at").first()


def replay_in_flight(*, occurrence_id: int) -> Replay | None:
    return Replay.objects.filter(occurrence_id=occurrence_id, status__in=REPLAY_IN_FLIGHT).first()


def replays_awaiting_success(*, since: datetime) -> dict[str, Replay]:
    """Replays a success event may still confirm, by id text: those in flight, and those whose send looked failed
    since `since` (a target can process a request and still answer 5xx, or time out after doing the work)."""
    replays = Replay.objects.filter(
        Q(status__in=[ReplayStatus.SENDING, ReplayStatus.SENT]) | Q(status=ReplayStatus.FAILED, claimed_at__gte=since)
    )
    return {str(r.pk): r for r in replays}


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


def webhooks_for(*, kind: str) -> list[OutboundWebhook]:
    """Active webhooks subscribed to `kind` (an empty list subscribes to everything); filtered here because SQLite
    cannot ask whether a JSON list contains a value, and there are only a handful of webhooks."""
    return [
        w for w in OutboundWebhook.objects.filter(is_active=True).order_by("id") if not w.events or kind in w.events
    ]

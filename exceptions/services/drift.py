"""Interface drift: a catalogued interface silent for longer than its expected frequency becomes a `platform` case,
in the queue its catalogue entry names (else where the routing rules send it).

The transactions app discovers interfaces and keeps their catalogue; this job reads which are silent and turns each
silence into an occurrence through the case machinery (fingerprinted, reopened on recurrence). One occurrence per
silence: the signal key carries the time of the last traffic, so the job may run any number of times, and a silence
that ends and begins again is a new occurrence of the same case.
"""

import logging
from datetime import datetime

from django.utils import timezone

from exceptions.models import Queue
from exceptions.selectors import signal_keys_recorded
from exceptions.services.signals import Signal, signals_record_isolated
from transactions import selectors as txn_selectors
from transactions.durations import duration_label

logger = logging.getLogger(__name__)

ACTOR = "system:interface-drift"
SILENCE_CATEGORY = "platform"


def interface_silence_raise(*, now: datetime | None = None) -> int:
    """Raise (idempotently) one occurrence per silent catalogued interface; returns how many were recorded now."""
    now = now or timezone.now()
    silent = txn_selectors.interfaces_silent(now=now)
    queues = dict(
        Queue.objects.filter(slug__in={s["owner_queue"] for s in silent if s["owner_queue"]}).values_list("slug", "pk")
    )
    signals = []
    for s in silent:
        name = f"{s['source']} -> {s['target']}"
        expected = duration_label(s["expected_every"])
        signals.append(
            Signal(
                signal_key=f"interface-silent:{s['id']}:{s['last_seen_at'].isoformat()}",
                category_slug=SILENCE_CATEGORY,
                system=s["target"],
                kind=f"interface.silent.{s['source']}",
                title=f"Silent interface: {name}",
                message=(
                    f"No hand-over from {s['source']} to {s['target']} since {s['last_seen_at'].isoformat()}; "
                    f"the catalogue expects one every {expected}"
                    + (f" (owner: {s['owner_team']})." if s["owner_team"] else ".")
                ),
                occurred_at=s["last_seen_at"] + s["expected_every"],
                fingerprint_parts=("interface-silent", str(s["id"])),
                queue_id=queues.get(s["owner_queue"]),
            )
        )
    # Silences recorded before (the job runs every quarter hour) cost one indexed read, not a call.
    recorded = signal_keys_recorded(keys=[s.signal_key for s in signals])
    signals = [s for s in signals if s.signal_key not in recorded]
    raised = signals_record_isolated(signals, actor=ACTOR, log_event="exceptions.interface_silence_failed")
    if signals:
        logger.info("exceptions.interface_silence_checked", extra={"silent": len(signals), "recorded": len(raised)})
    return len(raised)

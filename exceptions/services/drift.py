"""Interface drift, two ways an estate changes under its owners' feet:

- silence: a catalogued interface silent for longer than its expected frequency becomes a `platform` case, in the
  queue its catalogue entry names (else where the routing rules send it). One occurrence per silence: the signal key
  carries the time of the last traffic, so the job may run any number of times, and a silence that ends and begins
  again is a new occurrence of the same case.
- a new interface: first traffic between two systems that were not connected, which nobody has catalogued, becomes a
  `notice` case (low severity: nothing failed, someone should confirm the change is expected and catalogue it) in the
  owner queue of its target system, else of its source system (from the catalogue), else where the routing rules
  send it. One occurrence per pair of systems, ever: re-deriving hops (the sweep, a rebuild) finds the same pair,
  whose signal key is already recorded.

What is not news is suppressed rather than batched into a notice nobody can act on: while the installation is
learning its estate (INTERFACE_NEW_LEARNING_DAYS after it first stored traffic) every interface is new, and a pair
discovered from traffic more than a day older than its discovery came with history (a first import of a year of
traffic, a backfill, a rebuild after the discovery rules changed). The map's table lists all of them, uncatalogued,
for the owners to work through. What is news but too much at once is batched: more than INTERFACE_NEW_WAVE new
interfaces within a day (a part of the estate instrumented for the first time) are occurrences of one wave case,
routed by the rules, instead of a notice each in every owner's queue.

The transactions app discovers interfaces and keeps their catalogue; these jobs read its selectors and turn what
they find into occurrences through the case machinery (fingerprinted, reopened on recurrence).
"""

import hashlib
import logging
from bisect import bisect_right
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from exceptions.models import Queue
from exceptions.selectors import signal_keys_recorded
from exceptions.services.signals import Signal, signals_record_isolated
from transactions import selectors as txn_selectors
from transactions.durations import duration_label

logger = logging.getLogger(__name__)

ACTOR = "system:interface-drift"
SILENCE_CATEGORY = "platform"
NOTICE_CATEGORY = "notice"
# Traffic this much older than the pair's discovery came with history being loaded, not with the interface going live.
HISTORY_AFTER = timedelta(days=1)
WAVE_WINDOW = timedelta(days=1)
# A new interface is news for a month: the job reads only what was discovered since, so its work stays that of the
# recent discoveries in an estate that grows for years (a job stopped for longer loses those notices, nothing else).
NEWS_FOR = timedelta(days=30)


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


def _new_key(source: str, target: str) -> str:
    # By names, not id: the pair is the interface, also if its row were ever stored again.
    digest = hashlib.sha256(f"{source}\x1f{target}".encode()).hexdigest()[:40]
    return f"interface-new:{digest}"


def interface_new_raise(*, now: datetime | None = None) -> int:
    """Raise (idempotently) one notice per new uncatalogued interface, or one wave for many; returns how many
    occurrences were recorded now."""
    now = now or timezone.now()
    began = txn_selectors.ingest_first_received_at()
    if began is None:
        return 0
    learnt = began + timedelta(days=settings.INTERFACE_NEW_LEARNING_DAYS)
    if now < learnt:
        return 0
    found = [
        i
        for i in txn_selectors.interfaces_discovered_since(since=max(learnt, now - NEWS_FOR))
        if i["discovered_at"] - i["first_seen_at"] <= HISTORY_AFTER
    ]
    keys = {i["id"]: _new_key(i["source"], i["target"]) for i in found}
    recorded = signal_keys_recorded(keys=list(keys.values()))
    pending = [i for i in found if keys[i["id"]] not in recorded and not i["catalogued"]]
    if not pending:
        return 0
    # Every new interface counts towards a wave, noticed or catalogued since: whether one belongs to a wave depends
    # only on what was discovered before it, so the answer never changes between runs.
    discovered = [i["discovered_at"] for i in found]
    wave_limit = settings.INTERFACE_NEW_WAVE
    queue_slugs = {slug for i in pending for slug in (i["target_queue"], i["source_queue"]) if slug}
    queues = dict(Queue.objects.filter(slug__in=queue_slugs).values_list("slug", "pk"))
    signals = []
    waves = 0
    for i in pending:
        name = f"{i['source']} -> {i['target']}"
        first = i["first_seen_at"].isoformat()
        earlier = bisect_right(discovered, i["discovered_at"]) - bisect_right(
            discovered, i["discovered_at"] - WAVE_WINDOW
        )
        if len(pending) > wave_limit or earlier > wave_limit:
            waves += 1
            signals.append(
                Signal(
                    signal_key=keys[i["id"]],
                    category_slug=NOTICE_CATEGORY,
                    system="",
                    kind="interface.new.wave",
                    title="Many new interfaces discovered at once",
                    message=(
                        f"New interface {name}, first hand-over at {first}: one of more than {wave_limit} discovered "
                        "within a day. Confirm what was connected and catalogue them (the integration map lists them)."
                    ),
                    occurred_at=i["first_seen_at"],
                    txn_id=i["first_txn_id"],
                    fingerprint_parts=("interface-new", "wave"),
                )
            )
            continue
        signals.append(
            Signal(
                signal_key=keys[i["id"]],
                category_slug=NOTICE_CATEGORY,
                system=i["target"],
                kind=f"interface.new.{i['source']}"[:200],
                title=f"New interface: {name}",
                message=(
                    f"First hand-over from {i['source']} to {i['target']} at {first}; the catalogue does not know this "
                    "interface. Confirm it is expected and catalogue it (owner, criticality, expected frequency)."
                ),
                occurred_at=i["first_seen_at"],
                txn_id=i["first_txn_id"],
                fingerprint_parts=("interface-new", i["source"], i["target"]),
                queue_id=queues.get(i["target_queue"]) or queues.get(i["source_queue"]),
            )
        )
    raised = signals_record_isolated(signals, actor=ACTOR, log_event="exceptions.interface_new_failed")
    logger.info("exceptions.interface_new_checked", extra={"new": len(pending), "wave": waves, "recorded": len(raised)})
    return len(raised)

"""Signals: occurrences that no failed event carries, such as the silence of an expected event (an SLA's stop event
that never came). A higher app turns the condition into an occurrence with `signal_record` and ends it with
`signal_resolve`; both go through the same grouping, routing, reopening, activity and audit as failed events.

A signal names its category (no classification rule is asked: the caller knows what the condition is), and its
fingerprint is built from the category, system, kind and the caller's `fingerprint_parts`, so that repeats of the
same kind of silence group into one case with many occurrences.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction

from console.lib.audit import audit_record
from console.lib.errors import DomainError
from exceptions.choices import ACTIVE_STATUSES, ActivityKind
from exceptions.classification import FailureFacts, fingerprint
from exceptions.models import Case, Category, ExceptionRecord, FingerprintOverride
from exceptions.services.cases import case_resolve_automatically
from exceptions.services.classify import Arrival, fingerprints_lock, occurrences_group, override_target

logger = logging.getLogger(__name__)

SIGNAL_KEY_MAX = 200  # ExceptionRecord.signal_key
SIGNAL_KEYS_AUDITED = 2000  # per entry; the largest batch is the stall sweep's 2,000 transactions
# Separates the parts inside the error signature; the prefix keeps a signal's fingerprint apart from any failure's.
PART_SEPARATOR = "\x1f"
SIGNAL_PREFIX = "signal"


def signal_fingerprint(*, category_slug: str, system: str, kind: str, fingerprint_parts: tuple[str, ...] = ()) -> str:
    """The fingerprint of a signal's case: category, system, kind and the caller's parts (e.g. the SLA definition)."""
    return fingerprint(
        category=category_slug,
        system=system,
        kind=kind,
        error_signature=PART_SEPARATOR.join((SIGNAL_PREFIX, *fingerprint_parts)),
    )


def _live_case(print_: str) -> Case | None:
    # Where the next occurrence of this fingerprint would go: an operator's merge first, else the oldest live case.
    overrides = list(FingerprintOverride.objects.filter(is_active=True, fingerprint=print_).select_related("target"))
    return (
        override_target(overrides, "")
        or Case.objects.select_for_update(of=("self",))
        .filter(fingerprint=print_, merged_into__isnull=True)
        .order_by("id")
        .first()
    )


@dataclass(frozen=True)
class Signal:
    """One occurrence of a signalled condition, as `signals_record` takes it."""

    signal_key: str
    category_slug: str
    system: str
    kind: str
    title: str
    message: str
    occurred_at: datetime
    txn_id: int | None = None
    entity: str = ""
    fingerprint_parts: tuple[str, ...] = ()
    queue_id: int | None = None  # where a new case goes; None: the routing rules decide
    amount: Decimal | None = None  # at stake in this occurrence (routing by amount, the case's total, priority)
    currency: str = ""


@transaction.atomic
def signals_record(signals: list[Signal], *, actor: str = "system:slas") -> dict[str, Case]:
    """Record occurrences of signalled conditions; returns each signal key's case (created and routed, grown, or
    reopened).

    Idempotent per `signal_key`: a key recorded before changes nothing and maps to the case it was recorded into. A
    new case is named by the signal's `title` and goes to its `queue_id`, else where the routing rules send it; a
    resolved one reopens with the same activity as a recurring failure. The call's audit entry
    `exceptions.signals_recorded` names the signal keys and the cases created, reopened and grown. The work is per
    call, not per signal (one grouping pass for all of them), so a job that finds 300 stalled transactions pays for
    one batch.
    """
    by_key: dict[str, Signal] = {}
    for signal in signals:
        key = signal.signal_key.strip()
        if not key or len(key) > SIGNAL_KEY_MAX:
            raise DomainError(f"a signal key is 1 to {SIGNAL_KEY_MAX} characters")
        by_key.setdefault(key, signal)
    if not by_key:
        return {}
    categories = {c.slug: c for c in Category.objects.filter(slug__in={s.category_slug for s in by_key.values()})}
    missing = {s.category_slug for s in by_key.values()} - set(categories)
    if missing:
        raise DomainError(f"no category {sorted(missing)[0]!r}")
    prints = {
        key: signal_fingerprint(
            category_slug=s.category_slug, system=s.system, kind=s.kind, fingerprint_parts=s.fingerprint_parts
        )
        for key, s in by_key.items()
    }
    # Locked before looking for the keys: a concurrent call with the same key waits here and then finds the first one.
    fingerprints_lock(prints.values())
    cases: dict[str, Case] = {
        record.signal_key: record.case
        for record in ExceptionRecord.objects.filter(signal_key__in=list(by_key)).select_related("case")
    }
    arrivals = [
        Arrival(
            facts=FailureFacts(system=s.system, kind=s.kind, message=s.message, entity=s.entity, amount=s.amount),
            category=s.category_slug,
            rule_id=None,
            explanation=f"signalled by {actor}"[:300],
            signature=" / ".join(s.fingerprint_parts)[:300],
            fingerprint=prints[key],
            at=s.occurred_at,
            currency=s.currency,
            txn_id=s.txn_id,
            signal_key=key,
            title=s.title,
            queue_id=s.queue_id,
        )
        for key, s in by_key.items()
        if key not in cases
    ]
    grouped = occurrences_group(arrivals, actor=actor)
    for record in grouped.records:
        cases[record.signal_key] = record.case
    if grouped.records:
        # One entry per call, like classification's: an entry per occurrence against the case would make a case
        # with 100,000 occurrences carry 100,000 entries into every one of its transactions' lineage.
        audit_record(
            actor=actor,
            action="exceptions.signals_recorded",
            object_type="exceptions.case",
            after={
                "occurrences": len(grouped.records),
                "signal_keys": [r.signal_key for r in grouped.records][:SIGNAL_KEYS_AUDITED],
                "cases": sorted({r.case_id for r in grouped.records})[:200],
                "cases_created": grouped.created_ids[:200],
                "cases_reopened": grouped.reopened_ids[:200],
            },
        )
    return cases


def signals_record_isolated(signals: list[Signal], *, actor: str, log_event: str) -> dict[str, Case]:
    """`signals_record`, where one signal that cannot be recorded must not stop the others: the batch first, and if
    it fails, each signal on its own. Failures are logged (one traceback, then a count) and left for the caller's
    next pass; returns the cases of the keys recorded."""
    if not signals:
        return {}
    try:
        return signals_record(signals, actor=actor)
    except Exception:
        logger.info("%s: the batch of %d failed, recording one by one", log_event, len(signals))
    cases: dict[str, Case] = {}
    failed = 0
    for signal in signals:
        try:
            cases.update(signals_record([signal], actor=actor))
        except Exception:
            if not failed:
                logger.exception(log_event, extra={"signal_key": signal.signal_key, "txn": signal.txn_id})
            failed += 1
    if failed > 1:
        logger.error(log_event, extra={"failed": failed, "of": len(signals)})
    return cases


def signal_record(
    *,
    signal_key: str,
    category_slug: str,
    system: str,
    kind: str,
    title: str,
    message: str,
    occurred_at: datetime,
    txn_id: int | None = None,
    entity: str = "",
    fingerprint_parts: tuple[str, ...] = (),
    queue_id: int | None = None,
    actor: str = "system:slas",
) -> Case:
    """Record one occurrence of a signalled condition and return its case (`signals_record` for one signal)."""
    signal = Signal(
        signal_key=signal_key,
        category_slug=category_slug,
        system=system,
        kind=kind,
        title=title,
        message=message,
        occurred_at=occurred_at,
        txn_id=txn_id,
        entity=entity,
        fingerprint_parts=fingerprint_parts,
        queue_id=queue_id,
    )
    return signals_record([signal], actor=actor)[signal_key.strip()]


@transaction.atomic
def signal_resolve(
    *,
    category_slug: str,
    system: str,
    kind: str,
    fingerprint_parts: tuple[str, ...] = (),
    actor: str = "system:slas",
    note: str = "",
) -> Case | None:
    """The signalled condition ended (traffic returned): resolve the open case of that fingerprint, with an activity
    and the audit entry `case.resolved`. None, and nothing written, when no case of it is open (or it is snoozed)."""
    print_ = signal_fingerprint(
        category_slug=category_slug, system=system, kind=kind, fingerprint_parts=fingerprint_parts
    )
    fingerprints_lock([print_])
    case = _live_case(print_)
    if case is None or case.status not in ACTIVE_STATUSES:
        return None
    case_resolve_automatically(
        case_id=case.pk,
        actor=actor,
        kind=ActivityKind.STATUS,
        body=note.strip()[:2000] or "the signalled condition ended",
        data={"signal": "ended"},
    )
    return Case.objects.get(pk=case.pk)

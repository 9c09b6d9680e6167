"""Signals: occurrences that no failed event carries, such as the silence of an expected event (an SLA's stop event
that never came). A higher app turns the condition into an occurrence with `signal_record` and ends it with
`signal_resolve`; both go through the same grouping, routing, reopening, activity and audit as failed events.

A signal names its category (no classification rule is asked: the caller knows what the condition is), and its
fingerprint is built from the category, system, kind and the caller's `fingerprint_parts`, so that repeats of the
same kind of silence group into one case with many occurrences.
"""

from datetime import datetime

from django.db import transaction

from console.lib.audit import audit_record
from console.lib.errors import DomainError
from exceptions.choices import ACTIVE_STATUSES, ActivityKind
from exceptions.classification import FailureFacts, fingerprint
from exceptions.models import Case, Category, ExceptionRecord, FingerprintOverride
from exceptions.services.cases import case_resolve_automatically
from exceptions.services.classify import Arrival, fingerprints_lock, occurrences_group, override_target

SIGNAL_KEY_MAX = 200  # ExceptionRecord.signal_key
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


@transaction.atomic
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
    actor: str = "system:slas",
) -> Case:
    """Record one occurrence of a signalled condition and return its case (created and routed, grown, or reopened).

    Idempotent per `signal_key`: a second call with the same key changes nothing and returns the case the first one
    recorded into. The case is created with `title`, routed by the routing rules like any case, and a resolved one
    reopens with the same activity as a recurring failure; the audit entry `exceptions.signal_recorded` names it.
    """
    key = signal_key.strip()
    if not key or len(key) > SIGNAL_KEY_MAX:
        raise DomainError(f"a signal key is 1 to {SIGNAL_KEY_MAX} characters")
    category = Category.objects.filter(slug=category_slug).first()
    if category is None:
        raise DomainError(f"no category {category_slug!r}")
    print_ = signal_fingerprint(
        category_slug=category.slug, system=system, kind=kind, fingerprint_parts=fingerprint_parts
    )
    # Locked before looking for the key: a concurrent call with the same key waits here and then finds the first one.
    fingerprints_lock([print_])
    existing = ExceptionRecord.objects.filter(signal_key=key).select_related("case").first()
    if existing is not None:
        return existing.case
    grouped = occurrences_group(
        [
            Arrival(
                facts=FailureFacts(system=system, kind=kind, message=message, entity=entity),
                category=category.slug,
                rule_id=None,
                explanation=f"signalled by {actor}"[:300],
                signature=" / ".join(fingerprint_parts)[:300],
                fingerprint=print_,
                at=occurred_at,
                txn_id=txn_id,
                signal_key=key,
                title=title,
            )
        ],
        actor=actor,
    )
    case = grouped.records[0].case
    audit_record(
        actor=actor,
        action="exceptions.signal_recorded",
        obj=case,
        after={
            "signal_key": key,
            "case_created": case.pk in grouped.created_ids,
            "case_reopened": case.pk in grouped.reopened_ids,
            "occurrences": case.occurrence_count,
        },
    )
    return case


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

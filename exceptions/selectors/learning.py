"""Reads of learning from triage: the rule a case proposes, and the open unclassified cases a rule now classifies."""

from dataclasses import dataclass

from django.db.models import OuterRef, Subquery

from exceptions.choices import UNCLASSIFIED, ActivityKind
from exceptions.classification import CaseFacts, RuleDraft, classify, route, rule_from_failure
from exceptions.models import Case, CaseActivity, ClassificationRule, ExceptionRecord, Queue
from exceptions.selectors.rules import classification_specs, occurrence_facts, open_cases, routing_specs
from transactions.selectors import failed_event_details

# Past this many open unclassified cases, the reclassification offer looks at the most recently seen ones only.
RECLASSIFY_LIMIT = 5_000


def case_latest_failure(*, case: Case) -> ExceptionRecord | None:
    """The case's latest occurrence that a failed event carries (signals name their category themselves)."""
    return ExceptionRecord.objects.filter(case=case, event_id__isnull=False).order_by("-occurred_at", "-id").first()


def case_rule_draft(*, case: Case) -> RuleDraft | None:
    """The rule generalised from the case's latest failure; None when the case has no failed event (a signal)."""
    record = case_latest_failure(case=case)
    if record is None:
        return None
    events = failed_event_details(event_ids=[record.event_id])
    return rule_from_failure(occurrence_facts(record, events[0] if events else None))


@dataclass(frozen=True)
class Reclassification:
    """An open unclassified case that the saved rules now put in a category."""

    case_id: int
    title: str
    version: int
    queue: str
    to_queue: str  # where routing puts it once classified
    category: str
    rule_id: int
    explanation: str


def unclassified_cases_matching(*, rule: ClassificationRule, limit: int = RECLASSIFY_LIMIT) -> list[Reclassification]:
    """Open unclassified cases whose latest failure the active rules now classify with `rule` (the rules before it
    still win; a rule that does not win for a case leaves it alone)."""
    specs = classification_specs()
    if not rule.is_active or not any(s.rule_id == rule.pk for s in specs):
        return []
    # The latest failed occurrence of each case: occurrence_case_idx (case, -occurred_at) serves one probe per case.
    latest = (
        ExceptionRecord.objects.filter(case=OuterRef("pk"), event_id__isnull=False)
        .order_by("-occurred_at", "-id")
        .values("pk")[:1]
    )
    cases = list(
        open_cases()
        .filter(category__slug=UNCLASSIFIED)
        .select_related("queue")
        .annotate(latest_id=Subquery(latest))
        .order_by("-last_seen", "-id")[:limit]
    )
    wanted = [c.latest_id for c in cases if c.latest_id is not None]  # type: ignore[attr-defined]
    by_id = ExceptionRecord.objects.in_bulk(wanted)
    records = {r.case_id: r for r in by_id.values()}
    events = {e["id"]: e for e in failed_event_details(event_ids=[r.event_id for r in records.values()])}
    routes = routing_specs()
    queues = dict(Queue.objects.values_list("pk", "name"))
    default_id = Queue.objects.filter(is_default=True).values_list("pk", flat=True).first()
    found = []
    for case in cases:
        record = records.get(case.pk)
        if record is None:
            continue
        outcome = classify(occurrence_facts(record, events.get(record.event_id)), specs)
        if outcome.rule_id == rule.pk:
            facts = CaseFacts(outcome.category, case.system, case.kind, record.entity, case.amount_at_stake)
            routed = route(facts, routes)
            to_queue = routed.queue_id if routed else (default_id or case.queue_id)
            found.append(
                Reclassification(
                    case_id=case.pk,
                    title=case.title,
                    version=case.version,
                    queue=case.queue.name,
                    to_queue=queues.get(to_queue, "?"),
                    category=outcome.category,
                    rule_id=rule.pk,
                    explanation=outcome.explanation,
                )
            )
    return found


def case_rule_proposals(*, case: Case) -> list[CaseActivity]:
    """Rules proposed from this case by people who may not save rules, newest first."""
    return list(CaseActivity.objects.filter(case=case, kind=ActivityKind.PROPOSED).order_by("-created_at", "-id"))


def cases_with_rule_proposals(*, case_ids: list[int]) -> set[int]:
    """Which of these cases carry a proposed rule (the taxonomy gap marks them for the managers who review them)."""
    return set(
        CaseActivity.objects.filter(case_id__in=case_ids, kind=ActivityKind.PROPOSED).values_list("case_id", flat=True)
    )

"""Learning from triage: a rule proposed from an unclassified case (by whoever works it), and moving the open
unclassified cases a saved rule now classifies into their category and queue (by a manager, after saving the rule).

Saving the rule itself is `classification_rule_create` (services/configuration.py): one path for every rule.
"""

from decimal import Decimal
from typing import Any

from django.db import transaction

from console.lib.audit import actor_for, audit_record
from console.lib.errors import DomainError
from exceptions.choices import UNCLASSIFIED, ActivityKind
from exceptions.classification import CaseFacts, fingerprint, priority_for, route
from exceptions.models import Case, CaseActivity, Category, ClassificationRule, ExceptionRecord, Queue
from exceptions.selectors import Reclassification, routing_specs, unclassified_cases_matching
from exceptions.services.cases import case_acquire, case_act
from exceptions.services.classify import fingerprints_lock
from exceptions.services.configuration import AUDITED_MOVES, classification_rule_problems

PROPOSED_FIELDS = ("name", "system", "kind", "error_code", "error_type", "message_pattern", "http_status")


@transaction.atomic
def case_rule_propose(
    *, case_id: int, actor: Any, expected_version: int | None, category: Category, rule: dict[str, str], note: str = ""
) -> CaseActivity:
    """Record on an unclassified case the rule its worker proposes, for a manager to review and save; nothing
    classifies differently until then."""
    case = case_acquire(case_id=case_id, actor=actor, expected_version=expected_version)
    if case.category.slug != UNCLASSIFIED:
        raise DomainError(f"case #{case.pk} is classified already ({case.category.name})")
    if category.slug == UNCLASSIFIED:
        raise DomainError("choose the category the failure belongs to")
    fields = {name: str(rule.get(name) or "").strip() for name in PROPOSED_FIELDS}
    problems = classification_rule_problems(
        message_pattern=fields["message_pattern"], http_status=fields["http_status"], attributes={}
    )
    if problems:
        raise DomainError("; ".join(f"{name}: {text}" for name, text in problems.items()))
    proposal = {"category": category.slug, **fields, "note": note.strip()[:500]}
    return case_act(
        case=case,
        actor=actor_for(actor),
        kind=ActivityKind.PROPOSED,
        body=f"proposes a rule classifying it as {category.name}"
        + (f": {proposal['note']}" if proposal["note"] else ""),
        data=proposal,
        action="case.rule_proposed",
        after={"proposal": proposal},
        snapshot=False,
    )


def _default_queue_id() -> int | None:
    return Queue.objects.filter(is_default=True).values_list("pk", flat=True).first()


@transaction.atomic
def cases_reclassify(
    *, rule: ClassificationRule, actor: Any, versions: dict[int, int] | None = None
) -> tuple[list[Reclassification], list[int]]:
    """Move the open unclassified cases that `rule` now classifies (all of them, or those in `versions` still at that
    version) into its category, then route them as a new case of that category would be routed. Their unclassified
    occurrences follow, and so does their fingerprint, so that later occurrences join them. Returns what moved and
    the ids skipped because they changed since the page showed them."""
    who = actor_for(actor)
    rule = ClassificationRule.objects.select_related("category").get(pk=rule.pk)
    found = unclassified_cases_matching(rule=rule)
    # A case the page listed that the rule no longer classifies (acted on, or the rules changed since) stays as it is.
    gone = sorted(set(versions or ()) - {r.case_id for r in found})
    if versions is not None:
        found = [r for r in found if r.case_id in versions]
    if not found:
        return [], gone
    locked = {
        c.pk: c
        for c in Case.objects.select_for_update(of=("self",))
        .select_related("queue", "category")
        .filter(pk__in=[r.case_id for r in found])
        .order_by("pk")
    }
    routes = routing_specs()
    queues = {q.pk: q for q in Queue.objects.all()}
    default_id = _default_queue_id()
    category = rule.category
    moved: list[Reclassification] = []
    stale: list[int] = list(gone)
    fingerprints_lock(
        fingerprint(category=category.slug, system=c.system, kind=c.kind, error_signature=c.error_signature)
        for c in locked.values()
    )
    for row in found:
        case = locked.get(row.case_id)
        # Changed since the page (or since the read above): someone acted on it, or it is no longer unclassified.
        if case is None or case.category.slug != UNCLASSIFIED or case.merged_into_id:
            stale.append(row.case_id)
            continue
        if versions is not None and versions[row.case_id] != case.version:
            stale.append(row.case_id)
            continue
        latest = ExceptionRecord.objects.filter(case=case).order_by("-occurred_at", "-id").values("entity").first()
        facts = CaseFacts(
            category.slug, case.system, case.kind, (latest or {}).get("entity") or "", case.amount_at_stake
        )
        routed = route(facts, routes)
        queue_id = routed.queue_id if routed else (default_id or case.queue_id)
        from_queue = case.queue
        new_print = fingerprint(
            category=category.slug, system=case.system, kind=case.kind, error_signature=case.error_signature
        )
        ExceptionRecord.objects.filter(case=case, category__slug=UNCLASSIFIED).update(
            category=category, rule=rule, explanation=row.explanation, fingerprint=new_print
        )
        case.category, case.rule, case.explanation, case.fingerprint = category, rule, row.explanation, new_print
        case.title = (f"{category.name}: " + case.title.split(": ", 1)[-1])[:300]
        case.priority = priority_for(
            category.severity, case.amount_at_stake or Decimal(0), escalation_level=case.escalation_level
        )
        fields = ["category", "rule", "explanation", "fingerprint", "title", "priority"]
        if queue_id != case.queue_id:
            case.queue, case.routing_rule_id = queues[queue_id], routed.rule_id if routed else None
            fields += ["queue", "routing_rule"]
        where = f"; moved from {from_queue.name} to {case.queue.name}" if case.queue_id != from_queue.pk else ""
        case_act(
            case=case,
            actor=who,
            kind=ActivityKind.RECLASSIFIED,
            body=f"classified as {category.name} by rule “{rule.name}”{where}",
            data={"category": category.slug, "rule": rule.pk, "from": from_queue.slug, "to": case.queue.slug},
            action="case.reclassified",
            before={"category": UNCLASSIFIED, "queue": from_queue.slug},
            after={"category": category.slug, "rule": rule.pk},
            fields=fields,
        )
        moved.append(row)
    if moved:
        audit_record(
            actor=who,
            action="cases.reclassified",
            obj=rule,
            after={"count": len(moved), "cases": [m.case_id for m in moved][:AUDITED_MOVES]},
        )
    return moved, stale

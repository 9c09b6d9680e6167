"""Reads for the console's own pages: the audit trail and the compliance lineage."""

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from console.lib.audit import AuditEntry
from console.lineage import EventFact, Finding, LineageRow, SodPair, StepControl, actor_key, lineage_build
from console.models import AuditChainCheck, EvidenceJob, SodRule
from exceptions.choices import ACTIVE_STATUSES
from exceptions.models import Case, Notification, Queue, Replay
from exceptions.selectors import lineage_case_facts, queue_summaries
from slas.choices import ClockStatus, EvidenceCheckStatus
from slas.models import EvidenceCheck, SlaClock, VolumeMonitor
from slas.selectors import sla_verdicts
from transactions.choices import TransactionStatus
from transactions.models import DeadLetter, Event, Transaction
from transactions.selectors import (
    lineage_events,
    lineage_transactions,
    process_step_rules,
    transaction_ids_for_search,
)


def audit_entry_list() -> QuerySet[AuditEntry]:
    return AuditEntry.objects.order_by("-id")


def audit_activity_by_day(*, days: int = 14) -> list[dict]:
    """Audit entries per day and action family (auth, case, rule...) for the last `days` days."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        AuditEntry.objects.filter(occurred_at__gte=since)
        .annotate(day=TruncDate("occurred_at"))
        .values("day", "action")
        .annotate(n=Count("id"))
        .order_by("day")
    )
    totals: dict[tuple, int] = {}
    for row in rows:
        key = (row["day"], row["action"].split(".", 1)[0])
        totals[key] = totals.get(key, 0) + row["n"]
    return [{"day": day, "family": family, "count": n} for (day, family), n in sorted(totals.items())]


# ---- Compliance lineage ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineageResult:
    """A lineage search: the transactions found, their rows in time order, and the findings of the checks."""

    query: str
    transactions: list[dict]
    rows: list[LineageRow]
    findings: list[Finding]
    audit_entry_ids: list[int]
    generated_at: datetime


def sla_verdict_rows(*, txn_ids: list[int]) -> list[LineageRow]:
    """The SLA verdicts Closeloop reached on these transactions, as automatic decisions in the lineage."""
    return [
        LineageRow(
            v["at"],
            "decision",
            v["txn_id"],
            "system:slas",
            f"SLA {v['definition']}: {v['status'].replace('_', ' ')}",
            f"sla-clock:{v['clock_id']}",
            decision=v["status"],
            detail=v["reason"],
            link=f"{reverse('sla-clock-list')}?txn={v['txn_id']}",
        )
        for v in sla_verdicts(txn_ids=txn_ids)
    ]


def _roles_of(actors: set[str]) -> dict[str, frozenset[str]]:
    """Closeloop roles of the approvers that are Closeloop users (matched by user name, case ignored)."""
    wanted = {actor_key(a) for a in actors if a}
    if not wanted:
        return {}
    roles: dict[str, set[str]] = {}
    users = (
        get_user_model()
        .objects.filter(
            **{f"{get_user_model().USERNAME_FIELD}__iregex": r"^(" + "|".join(re.escape(a) for a in wanted) + r")$"}
        )
        .prefetch_related("groups")
    )
    for user in users:
        roles.setdefault(actor_key(user.get_username()), set()).update(g.name for g in user.groups.all())
    return {k: frozenset(v) for k, v in roles.items()}


def _exception_rows(facts: dict[str, list[dict]], txn_alias: dict[int, int]) -> list[LineageRow]:
    rows: list[LineageRow] = []
    case_txn: dict[int, int] = {}
    for r in facts["records"]:
        txn_id = txn_alias.get(r["txn_id"], r["txn_id"])
        case_txn.setdefault(r["case_id"], txn_id)
        by = f"rule “{r['rule__name']}”" if r["rule__name"] else "no rule (unclassified)"
        if r["signal_key"]:
            by = "signal"
        rows.append(
            LineageRow(
                r["created_at"],
                "decision",
                txn_id,
                "system:classification",
                f"classified {r['category__slug']} by {by}",
                f"occurrence:{r['id']}",
                system=r["system"],
                detail=r["explanation"],
                link=reverse("case-detail", args=[r["case_id"]]),
            )
        )
    for c in facts["cases"]:
        routed = f"rule “{c['routing_rule__name']}”" if c["routing_rule__name"] else "the default queue"
        rows.append(
            LineageRow(
                c["created_at"],
                "case",
                case_txn.get(c["id"]),
                "system:routing",
                f"case #{c['id']} {c['title']} -> {c['queue__name']} by {routed}",
                f"case:{c['id']}",
                detail=c["status"],
                link=reverse("case-detail", args=[c["id"]]),
            )
        )
    for a in facts["activities"]:
        rows.append(
            LineageRow(
                a["created_at"],
                "case_action",
                case_txn.get(a["case_id"]),
                a["actor"],
                f"case #{a['case_id']} {a['kind']}",
                f"activity:{a['id']}",
                detail=a["body"][:300],
                link=reverse("case-detail", args=[a["case_id"]]),
            )
        )
    for p in facts["replays"]:
        rows.append(
            LineageRow(
                p["created_at"],
                "replay",
                case_txn.get(p["case_id"]),
                p["requested_by"],
                f"replay of case #{p['case_id']}: {p['status']}",
                f"replay:{p['id']}",
                detail=p["outcome"],
                link=reverse("case-detail", args=[p["case_id"]]),
            )
        )
    return rows


BATCH_ACTIONS = ("exceptions.classified", "exceptions.signals_recorded")


def _batched_case_entries(case_txn: dict[int, int | None], records: list[dict]) -> list[AuditEntry]:
    """Classification and signals write one entry per batch (not one per occurrence) naming the cases it created or
    reopened and the signal keys it recorded: those entries are found in the minutes the occurrences were recorded,
    then kept only when they name our cases or our occurrences' signal keys."""
    if not records:
        return []
    first = min(r["created_at"] for r in records)
    last = max(r["created_at"] for r in records)
    keys = {r["signal_key"] for r in records if r["signal_key"]}
    near = AuditEntry.objects.filter(
        action__in=BATCH_ACTIONS, occurred_at__gte=first, occurred_at__lte=last + timedelta(minutes=5)
    )
    return [
        e
        for e in near.order_by("id")[:1000]
        if {*(e.after or {}).get("cases_created", []), *(e.after or {}).get("cases_reopened", [])} & set(case_txn)
        or keys.intersection((e.after or {}).get("signal_keys", []))
    ]


def _audit_rows(case_txn: dict[int, int | None], txn_ids: list[int], records: list[dict]) -> list[LineageRow]:
    audit_url = reverse("audit-list")
    key_txn = {r["signal_key"]: r["txn_id"] for r in records if r["signal_key"]}
    about = Q(object_type="exceptions.case", object_id__in=[str(c) for c in case_txn])
    about |= Q(object_type="transactions.transaction", object_id__in=[str(t) for t in txn_ids])
    rows = []
    entries = {
        e.pk: e for e in [*AuditEntry.objects.filter(about).order_by("id"), *_batched_case_entries(case_txn, records)]
    }
    for e in entries.values():
        if not e.object_id:
            named = [*(e.after or {}).get("cases_created", []), *(e.after or {}).get("cases_reopened", [])]
            txn_id = next((case_txn[c] for c in named if c in case_txn), None) or next(
                (key_txn[k] for k in (e.after or {}).get("signal_keys", []) if k in key_txn), None
            )
        elif e.object_type == "exceptions.case":
            txn_id = case_txn.get(int(e.object_id))
        else:
            txn_id = int(e.object_id)
        rows.append(
            LineageRow(
                e.occurred_at,
                "audit",
                txn_id,
                e.actor,
                e.action,
                f"audit:{e.pk}",
                detail=f"{e.object_type} {e.object_repr or e.object_id}",
                link=f"{audit_url}?object_type={e.object_type}&object_id={e.object_id}",
            )
        )
    return rows


def lineage_get(*, query: str = "", txn_ids: list[int] | None = None) -> LineageResult:
    """The lineage of the transactions a search names (a business key or transaction id), or of `txn_ids`."""
    ids = txn_ids if txn_ids is not None else transaction_ids_for_search(query=query)
    txns = lineage_transactions(txn_ids=ids)
    # Cases and audit entries may still name a transaction that was absorbed by a merge: they belong to the survivor.
    txn_alias = {absorbed: t["id"] for t in txns for absorbed in t["absorbed_ids"]}
    every_id = [*ids, *txn_alias]
    events = [
        EventFact(
            e["id"],
            e["txn_id"],
            e["occurred_at"],
            e["system"],
            e["kind"],
            e["status"],
            e["approval"],
            e["attributes"] or {},
        )
        for e in lineage_events(txn_ids=ids)
    ]
    process_ids = sorted({t["process_id"] for t in txns if t["process_id"]})
    steps = [
        StepControl(
            s.process_id,
            s.position,
            s.name,
            s.kind_pattern,
            s.system,
            s.requires_approval,
            s.approval_step,
            tuple(s.allowed_approvers or ()),
            s.approval_opens_case,
        )
        for s in process_step_rules(process_ids=process_ids)
    ]
    pairs = [
        SodPair(r.pk, r.first_step, r.second_step, r.process_id, r.opens_case)
        for r in SodRule.objects.filter(is_active=True).filter(Q(process__isnull=True) | Q(process_id__in=process_ids))
    ]
    facts = lineage_case_facts(txn_ids=every_id)
    other = _exception_rows(facts, txn_alias)
    case_txn = {int(r.ref.split(":")[1]): r.txn_id for r in other if r.kind == "case"}
    other += _audit_rows(case_txn, every_id, facts["records"]) + sla_verdict_rows(txn_ids=ids)
    built = lineage_build(
        events=events,
        other_rows=other,
        steps=steps,
        pairs=pairs,
        roles=_roles_of({e.approver for e in events if e.approval}),
        process_of={t["id"]: t["process_id"] for t in txns},
    )
    audit_ids = sorted(int(r.ref.split(":")[1]) for r in built.rows if r.kind == "audit")
    return LineageResult(
        query=query,
        transactions=txns,
        rows=built.rows,
        findings=built.findings,
        audit_entry_ids=audit_ids,
        generated_at=timezone.now(),
    )


def sod_rule_list() -> QuerySet[SodRule]:
    return SodRule.objects.select_related("process").order_by("first_step", "second_step", "id")


def sod_rule_get(*, rule_id: int) -> SodRule:
    return SodRule.objects.select_related("process").get(pk=rule_id)


def audit_chain_last_check() -> AuditChainCheck | None:
    return AuditChainCheck.objects.order_by("-checked_at", "-id").first()


def evidence_job_get(*, job_id: str) -> EvidenceJob:
    return EvidenceJob.objects.get(pk=job_id)


def evidence_job_recent(*, limit: int = 10) -> QuerySet[EvidenceJob]:
    return EvidenceJob.objects.order_by("-created_at")[:limit]


def demo_counts() -> dict[str, int]:
    """What `serve_demo` prints beside the simulator's summary: the console's own counts of each state it shows."""
    txn_states = dict(Transaction.objects.values_list("status").annotate(n=Count("id")).order_by())
    clock_states = dict(SlaClock.objects.values_list("status").annotate(n=Count("id")).order_by())
    live_cases = Case.objects.filter(merged_into__isnull=True)
    return {
        "events": Event.objects.count(),
        "transactions": sum(n for status, n in txn_states.items() if status != TransactionStatus.MERGED),
        "completed": txn_states.get(TransactionStatus.COMPLETED, 0),
        "recovered": txn_states.get(TransactionStatus.RECOVERED, 0),
        "failed": txn_states.get(TransactionStatus.FAILED, 0),
        "stalled": txn_states.get(TransactionStatus.STALLED, 0),
        "in_flight": txn_states.get(TransactionStatus.IN_FLIGHT, 0),
        "dead_letters": DeadLetter.objects.count(),
        "cases_open": live_cases.filter(status__in=ACTIVE_STATUSES).count(),
        "cases_escalated": live_cases.filter(escalation_level__gt=0).count(),
        # The queue pages' own count, summed over the queues.
        "cases_overdue": sum(q.overdue for q in queue_summaries(queues=Queue.objects.all(), now=timezone.now())),
        "notifications": Notification.objects.count(),
        "replays": Replay.objects.count(),
        "clocks_breached": clock_states.get(ClockStatus.BREACHED, 0),
        "clocks_at_risk": clock_states.get(ClockStatus.AT_RISK, 0),
        "clocks_paused": clock_states.get(ClockStatus.PAUSED, 0),
        "clocks_met": clock_states.get(ClockStatus.MET, 0),
        "monitors_violated": VolumeMonitor.objects.filter(currently_violated=True).count(),
        "evidence_missing": EvidenceCheck.objects.filter(status=EvidenceCheckStatus.MISSING).count(),
    }

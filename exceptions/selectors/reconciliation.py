"""Reads of reconciliation: rules, results and their figures (match rates, open mismatches, reconciled transactions,
the cells of the daily rollups), the FX rate table, and the preview of a rule as edited over the last 7 days'
transactions."""

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, F, Max, Q, QuerySet, Sum
from django.db.models.functions import TruncDate, TruncWeek

from exceptions.choices import ACTIVE_STATUSES, ReconciliationKind, ReconciliationStatus
from exceptions.models import (
    FxRate,
    ReconciliationDirtyDay,
    ReconciliationKey,
    ReconciliationReconciledDaily,
    ReconciliationResult,
    ReconciliationRule,
    ValueMapping,
)
from exceptions.reconciliation import RateLookup, evaluate_compare, rate_lookup, rule_spec, shown, unique_keys
from exceptions.selectors.rules import PREVIEW_DAYS  # the same week as classification's preview
from transactions import selectors as txn_selectors
from transactions.services.interfaces import day_bounds

PREVIEW_TRANSACTIONS = 2000
PREVIEW_ROWS = 20
# What the figures group results by: a name the page and the API use -> the result fields.
GROUPINGS = {
    "rule": ("rule_id", "rule__name"),
    "system_pair": ("left_system", "right_system"),
    "entity": ("entity",),
    "week": ("week",),
}


def reconciliation_rule_list() -> QuerySet[ReconciliationRule]:
    return ReconciliationRule.objects.select_related("process", "mapping").order_by("position", "id")


def reconciliation_rule_get(*, rule_id: int) -> ReconciliationRule:
    return reconciliation_rule_list().get(pk=rule_id)


def value_mapping_list() -> QuerySet[ValueMapping]:
    return ValueMapping.objects.order_by("name", "id")


def value_mapping_get(*, mapping_id: int) -> ValueMapping:
    return ValueMapping.objects.get(pk=mapping_id)


def fx_rate_get(*, rate_id: int) -> FxRate:
    return FxRate.objects.get(pk=rate_id)


def fx_rate_list() -> QuerySet[FxRate]:
    return FxRate.objects.order_by("base_currency", "quote_currency", "-valid_from")


def fx_rates() -> RateLookup:
    """The configured FX rates as a lookup (a small table, read once per batch)."""
    return rate_lookup(list(FxRate.objects.values_list("base_currency", "quote_currency", "valid_from", "rate")))


def reconciliation_result_list() -> QuerySet[ReconciliationResult]:
    """Results newest first (recon_result_recent_idx), with their rule; filter with ReconciliationResultFilter."""
    return ReconciliationResult.objects.select_related("rule").order_by("-occurred_at", "-id")


def reconciliation_match_rates(
    *, by: str, since: datetime | None = None, until: datetime | None = None, rule_id: int | None = None
) -> list[dict[str, Any]]:
    """Results counted per group (`by`: rule, system_pair, entity or week) in [since, until) of their events' time:
    {group fields..., matched, mismatched, incomplete, error, total, match_rate (matched of matched + mismatched;
    None when neither), amount_at_stake (of the mismatches)}, largest groups first."""
    if by not in GROUPINGS:
        raise ValueError(f"group by one of {', '.join(GROUPINGS)}")
    rows = ReconciliationResult.objects.all()
    if since is not None:
        rows = rows.filter(occurred_at__gte=since)
    if until is not None:
        rows = rows.filter(occurred_at__lt=until)
    if rule_id is not None:
        rows = rows.filter(rule_id=rule_id)
    if by == "week":
        rows = rows.annotate(week=TruncWeek("occurred_at"))
    counts = {status: Count("id", filter=Q(status=status)) for status in ReconciliationStatus.values}
    at_stake = Sum("amount_at_stake", filter=Q(status=ReconciliationStatus.MISMATCHED))
    grouped = rows.values(*GROUPINGS[by]).annotate(total=Count("id"), amount_at_stake=at_stake, **counts).order_by()
    found = []
    for row in grouped:
        decided = row["matched"] + row["mismatched"]
        row["match_rate"] = row["matched"] / decided if decided else None
        row["amount_at_stake"] = row["amount_at_stake"] or Decimal(0)
        found.append(row)
    return sorted(found, key=lambda r: (-r["total"], str([r[f] for f in GROUPINGS[by]])))


def reconciliation_open_mismatches(*, limit: int = 100) -> QuerySet[ReconciliationResult]:
    """Mismatches whose case is still being worked (or that have none yet), the largest amounts first."""
    return (
        ReconciliationResult.objects.filter(status=ReconciliationStatus.MISMATCHED)
        .filter(Q(case__isnull=True) | Q(case__status__in=ACTIVE_STATUSES))
        .select_related("rule", "case")
        .order_by(F("amount_at_stake").desc(nulls_last=True), "-occurred_at", "-id")[:limit]
    )


def reconciled_transaction_count(*, since: datetime | None = None, until: datetime | None = None) -> int:
    """Transactions with at least one result and every result matched, by their latest result's time: what the ROI
    dashboard counts as manual reconciliation avoided."""
    rows = ReconciliationResult.objects.all()
    if since is not None or until is not None:
        # A transaction whose latest result falls in the period has a result in it: only those are grouped (the
        # period's results by index, then each candidate's results by recon_result_unique), not the whole store.
        period = ReconciliationResult.objects.all()
        if since is not None:
            period = period.filter(occurred_at__gte=since)
        if until is not None:
            period = period.filter(occurred_at__lt=until)
        rows = rows.filter(txn_id__in=period.values("txn_id"))
    rows = rows.values("txn_id").annotate(
        last=Max("occurred_at"), other=Count("id", filter=~Q(status=ReconciliationStatus.MATCHED))
    )
    rows = rows.filter(other=0)
    if since is not None:
        rows = rows.filter(last__gte=since)
    if until is not None:
        rows = rows.filter(last__lt=until)
    return rows.order_by().count()


STATUSES = tuple(ReconciliationStatus.values)
Cell = tuple[date, int, str, str, str]  # (local day, rule, left system, right system, entity)
COUNTED = (*STATUSES, "amount_at_stake")


def reconciliation_cells(*, days: Iterable[date]) -> dict[Cell, dict[str, Any]]:
    """The results of these local days (DASHBOARD_TIME_ZONE) counted per day, rule, system pair and entity, straight
    from `ReconciliationResult` ({status: count, ..., amount_at_stake: of the mismatches}): what a day's rollup row
    holds, and what the page reads for a day whose rollup is not rebuilt yet."""
    ranges = [day_bounds(d, d) for d in sorted(set(days))]
    if not ranges:
        return {}
    period = Q()
    for start, end in ranges:
        period |= Q(occurred_at__gte=start, occurred_at__lt=end)
    rows = (
        ReconciliationResult.objects.filter(period)
        .annotate(day=TruncDate("occurred_at", tzinfo=ZoneInfo(settings.DASHBOARD_TIME_ZONE)))
        .values("day", "rule_id", "left_system", "right_system", "entity", "status")
        .annotate(n=Count("id"), at_stake=Sum("amount_at_stake"))
        .order_by()
    )
    cells: dict[Cell, dict[str, Any]] = {}
    for row in rows:
        key = (row["day"], row["rule_id"], row["left_system"], row["right_system"], row["entity"])
        cell = cells.setdefault(key, {status: 0 for status in STATUSES} | {"amount_at_stake": Decimal(0)})
        cell[row["status"]] += row["n"]
        if row["status"] == ReconciliationStatus.MISMATCHED:
            cell["amount_at_stake"] += row["at_stake"] or Decimal(0)
    return cells


def reconciliation_dirty_days(*, first: date, last: date) -> set[date]:
    """The local days first..last whose results changed since their rollups were built."""
    return set(ReconciliationDirtyDay.objects.filter(day__gte=first, day__lte=last).values_list("day", flat=True))


def reconciled_transactions_in(*, first: date, last: date) -> int:
    """Transactions whose every result is a match, counted on the local day of their latest result, over the days
    first..last: the ROI dashboard's manual reconciliation avoided, from `ReconciliationReconciledDaily`, the days not
    rebuilt yet counted from the results."""
    dirty = reconciliation_dirty_days(first=first, last=last)
    rolled = (
        ReconciliationReconciledDaily.objects.filter(day__gte=first, day__lte=last)
        .exclude(day__in=dirty)
        .aggregate(n=Sum("transactions"))["n"]
    )
    live = 0
    for day in dirty:
        since, until = day_bounds(day, day)
        live += reconciled_transaction_count(since=since, until=until)
    return (rolled or 0) + live


def reconciliation_results_for_transaction(*, txn_id: int) -> QuerySet[ReconciliationResult]:
    return ReconciliationResult.objects.filter(txn_id=txn_id).select_related("rule", "case").order_by("rule__position")


# ---- Preview --------------------------------------------------------------------------------------------------------


@dataclass
class PreviewRow:
    txn_id: int
    status: str
    left_value: str
    right_value: str
    reason: str
    current: str  # the stored result's status for this rule; "" when none


@dataclass
class ReconciliationPreview:
    """What the rule as edited would find among the transactions active in the last days (nothing is saved)."""

    days: int
    scanned: int
    capped: bool
    counts: dict[str, int] = field(default_factory=dict)
    changes: int = 0  # transactions whose verdict differs from the stored one of this rule
    rows: list[PreviewRow] = field(default_factory=list)


def reconciliation_rule_preview(
    *, rule: ReconciliationRule, now: datetime, limit: int = PREVIEW_TRANSACTIONS
) -> ReconciliationPreview:
    """Evaluate `rule` (saved or not, as the form or API body sets it) on the transactions active in the last 7 days,
    at most `limit` of them, newest first. A unique rule also looks its values up among the stored keys of the saved
    rule, so a duplicate of an older invoice shows."""
    ids = txn_selectors.transaction_ids_active_since(since=now - timedelta(days=PREVIEW_DAYS), limit=limit + 1)
    preview = ReconciliationPreview(days=PREVIEW_DAYS, scanned=min(len(ids), limit), capped=len(ids) > limit)
    ids = ids[:limit]
    spec = rule_spec(rule)
    rates = fx_rates()
    stored: dict[tuple[int, str], str] = {}
    if rule.pk:
        stored = {
            (txn_id, subject): status
            for txn_id, subject, status in ReconciliationResult.objects.filter(rule_id=rule.pk, txn_id__in=ids)
            .values_list("txn_id", "subject", "status")
            .iterator()
        }
    counts: Counter[str] = Counter({status: 0 for status in ReconciliationStatus.values})
    rows: list[PreviewRow] = []
    held: dict[str, list[tuple[int, int]]] = {}
    for start in range(0, len(ids), 500):
        facts = txn_selectors.transaction_events_facts(txn_ids=ids[start : start + 500])
        for txn in facts.values():
            if txn["merged_into_id"] or (rule.process_id and rule.process_id != txn["process_id"]):
                continue
            keys = txn.get("business_keys") or {}
            events = [{**e, "entity": e["entity"] or "", "txn_keys": keys} for e in txn["events"]]
            if rule.kind == ReconciliationKind.UNIQUE:
                for value, event in unique_keys(spec, events):
                    held.setdefault(value, []).append((txn["id"], event["id"]))
                continue
            verdict = evaluate_compare(spec, events, rates)
            counts[verdict.status] += 1
            current = stored.get((txn["id"], ""), "")
            preview.changes += bool(current) and current != verdict.status
            rows.append(
                PreviewRow(
                    txn["id"],
                    verdict.status,
                    verdict.left_shown or (shown(verdict.left.value) if verdict.left else ""),
                    verdict.right_shown or (shown(verdict.right.value) if verdict.right else ""),
                    verdict.reason,
                    current,
                )
            )
    if held and rule.pk:
        values = sorted(held)
        for start in range(0, len(values), 1000):
            for key in ReconciliationKey.objects.filter(rule_id=rule.pk, value__in=values[start : start + 1000]):
                if (key.txn_id, key.event_id) not in held[key.value]:
                    held[key.value].append((key.txn_id, key.event_id))
    for value, holders in sorted(held.items()):
        status = ReconciliationStatus.MISMATCHED if len(holders) > 1 else ReconciliationStatus.MATCHED
        for txn_id in sorted({t for t, _ in holders} & set(ids)):
            counts[status] += 1
            current = stored.get((txn_id, value), "")
            preview.changes += bool(current) and current != status
            others = ", ".join(f"event {e} in transaction {t}" for t, e in holders if t != txn_id)[:300]
            rows.append(PreviewRow(txn_id, status, value, others, f"{len(holders)} event(s) hold it", current))
    # Mismatches and errors first: they are what the rule would raise.
    order = {ReconciliationStatus.MISMATCHED: 0, ReconciliationStatus.ERROR: 1, ReconciliationStatus.INCOMPLETE: 2}
    rows.sort(key=lambda r: (order.get(r.status, 3), -r.txn_id))
    preview.rows = rows[:PREVIEW_ROWS]
    preview.counts = dict(counts)
    return preview

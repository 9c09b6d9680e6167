"""Reads behind the reconciliation page (/reconciliation/): match rates by rule, system pair, entity and week, the open
mismatches with the amounts at stake, each figure with the drill-down link that selects exactly the rows it counts.

Figures read `ReconciliationResult` through its indexes (a period of results, grouped by the database); the open
mismatches read the partial index of mismatched results, never the whole history.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from typing import Any

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncWeek
from django.urls import reverse
from django.utils.http import urlencode

from exceptions.choices import ACTIVE_STATUSES, ReconciliationStatus
from exceptions.dashboard_filters import EMPTY
from exceptions.models import ReconciliationResult, ReconciliationRule
from exceptions.selectors.reconciliation import GROUPINGS, reconciliation_open_mismatches

BY = ("rule", "system_pair", "entity", "week")
STATUSES = tuple(ReconciliationStatus.values)
OPEN_MISMATCHES_SHOWN = 50


@cache
def _drill_path() -> str:
    return reverse("reconciliation-drill")


def drill_link(**params: Any) -> str:
    """The drill-down list of the results selected by `params` (the results API's filter names)."""
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")}, doseq=True)
    return f"{_drill_path()}?{query}"


def _iso(moment: datetime) -> str:
    return moment.isoformat()


@dataclass
class ReconciliationDashboard:
    since: datetime
    until: datetime
    groups: dict[str, list[dict]] = field(default_factory=dict)  # by -> rows, each with counts, rate and links
    open_mismatches: list[ReconciliationResult] = field(default_factory=list)
    open_total: int = 0
    open_at_stake: list[dict] = field(default_factory=list)  # per currency: amount, count, link
    totals: dict[str, Any] = field(default_factory=dict)


def _group_params(by: str, row: dict, since: datetime, until: datetime) -> dict[str, Any]:
    """The filters that select a group's results within the period."""
    if by == "rule":
        return {"rule": row["rule_id"], "occurred_since": _iso(since), "occurred_until": _iso(until)}
    if by == "system_pair":
        return {
            "left_system": row["left_system"] or EMPTY,
            "right_system": row["right_system"] or EMPTY,
            "occurred_since": _iso(since),
            "occurred_until": _iso(until),
        }
    if by == "entity":
        return {"entity": row["entity"] or EMPTY, "occurred_since": _iso(since), "occurred_until": _iso(until)}
    week = row["week"]
    return {"occurred_since": _iso(max(week, since)), "occurred_until": _iso(min(week + timedelta(days=7), until))}


def _label(by: str, row: dict) -> str:
    if by == "rule":
        return row["rule__name"]
    if by == "system_pair":
        return f"{row['left_system'] or '-'} / {row['right_system'] or '-'}"
    if by == "entity":
        return row["entity"] or "-"
    return row["week"].date().isoformat()


def reconciliation_match_rates_all(*, since: datetime, until: datetime) -> dict[str, list[dict]]:
    """`reconciliation_match_rates` for every grouping at once (the same rows, keys and order), from one scan of the
    period's results: the database groups them by every dimension together (a few thousand groups at most: rules x
    system pairs x entities x weeks x statuses), and the four groupings are folded from those, so a page pays for
    one pass over the period rather than four."""
    names = dict(ReconciliationRule.objects.values_list("id", "name"))
    cells = (
        ReconciliationResult.objects.filter(occurred_at__gte=since, occurred_at__lt=until)
        .annotate(week=TruncWeek("occurred_at"))
        .values("rule_id", "left_system", "right_system", "entity", "week", "status")
        .annotate(n=Count("id"), at_stake=Sum("amount_at_stake"))
        .order_by()
    )
    folded: dict[str, dict[tuple, dict]] = {by: {} for by in GROUPINGS}
    for cell in cells:
        cell["rule__name"] = names.get(cell["rule_id"], "")
        for by, fields in GROUPINGS.items():
            key = tuple(cell[f] for f in fields)
            row = folded[by].get(key)
            if row is None:
                row = folded[by][key] = {f: cell[f] for f in fields}
                row |= {status: 0 for status in STATUSES} | {"total": 0, "amount_at_stake": Decimal(0)}
            row[cell["status"]] += cell["n"]
            row["total"] += cell["n"]
            if cell["status"] == ReconciliationStatus.MISMATCHED:
                row["amount_at_stake"] += cell["at_stake"] or Decimal(0)
    out = {}
    for by, rows in folded.items():
        for row in rows.values():
            decided = row["matched"] + row["mismatched"]
            row["match_rate"] = row["matched"] / decided if decided else None
        out[by] = sorted(rows.values(), key=lambda r, by=by: (-r["total"], str([r[f] for f in GROUPINGS[by]])))
    return out


def reconciliation_dashboard(*, since: datetime, until: datetime) -> ReconciliationDashboard:
    """Match rates per rule, system pair, entity and week of results whose events occurred in [since, until), and
    the open mismatches (of any time: they are still to be worked), the largest amounts first."""
    board = ReconciliationDashboard(since=since, until=until)
    grouped = reconciliation_match_rates_all(since=since, until=until)
    for by in BY:
        rows = grouped[by]
        if by == "week":
            rows.sort(key=lambda r: r["week"])
        for row in rows:
            params = _group_params(by, row, since, until)
            row["label"] = _label(by, row)
            row["match_pct"] = None if row["match_rate"] is None else 100 * row["match_rate"]
            row["url"] = drill_link(**params)
            row["links"] = {status: drill_link(status=status, **params) for status in STATUSES}
            row["decided_url"] = drill_link(
                status=[ReconciliationStatus.MATCHED, ReconciliationStatus.MISMATCHED], **params
            )
        board.groups[by] = rows
    rule_rows = board.groups["rule"]
    matched = sum(r["matched"] for r in rule_rows)
    mismatched = sum(r["mismatched"] for r in rule_rows)
    period = {"occurred_since": _iso(since), "occurred_until": _iso(until)}
    rate = matched / (matched + mismatched) if matched + mismatched else None
    board.totals = {
        "total": sum(r["total"] for r in rule_rows),
        "matched": matched,
        "mismatched": mismatched,
        "match_rate": rate,
        "match_pct": None if rate is None else 100 * rate,
        "url": drill_link(**period),
        "matched_url": drill_link(status=ReconciliationStatus.MATCHED, **period),
        "mismatched_url": drill_link(status=ReconciliationStatus.MISMATCHED, **period),
    }
    board.open_mismatches = list(reconciliation_open_mismatches(limit=OPEN_MISMATCHES_SHOWN))
    open_rows = ReconciliationResult.objects.filter(status=ReconciliationStatus.MISMATCHED).filter(
        Q(case__isnull=True) | Q(case__status__in=ACTIVE_STATUSES)
    )
    # Amounts only add up within a currency: one sum per currency.
    per_currency = open_rows.values("currency").annotate(count=Count("id"), amount=Sum("amount_at_stake")).order_by()
    board.open_at_stake = sorted(
        (
            {
                "currency": r["currency"] or EMPTY,
                "count": r["count"],
                "amount": r["amount"] or Decimal(0),
                "url": drill_link(status=ReconciliationStatus.MISMATCHED, open="true", currency=r["currency"] or EMPTY),
            }
            for r in per_currency
        ),
        key=lambda r: (-r["count"], r["currency"]),
    )
    board.open_total = sum(r["count"] for r in board.open_at_stake)
    board.totals["open_url"] = drill_link(status=ReconciliationStatus.MISMATCHED, open="true")
    return board

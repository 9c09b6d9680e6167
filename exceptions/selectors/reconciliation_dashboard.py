"""Reads behind the reconciliation page (/reconciliation/): match rates by rule, system pair, entity and week, the open
mismatches with the amounts at stake, each figure with the drill-down link that selects exactly the rows it counts.

Figures read the daily rollup (`ReconciliationDaily`, kept by exceptions.services.reconciliation_rollups), so a page
costs days x rules x system pairs x entities whatever the history; the days whose results changed since their rollup
was built are read from the results, so a figure always counts exactly the rows its drill-down lists. The open
mismatches read the partial index of mismatched results, never the whole history.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.urls import reverse
from django.utils.http import urlencode

from exceptions.choices import ACTIVE_STATUSES, ReconciliationStatus
from exceptions.dashboard_filters import EMPTY
from exceptions.models import ReconciliationDaily, ReconciliationResult, ReconciliationRule
from exceptions.selectors.reconciliation import (
    COUNTED,
    GROUPINGS,
    STATUSES,
    Cell,
    reconciliation_cells,
    reconciliation_dirty_days,
    reconciliation_open_mismatches,
)
from transactions.services.interfaces import day_bounds

BY = ("rule", "system_pair", "entity", "week")
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


def _period_cells(first: date, last: date) -> Iterable[tuple[Cell, dict[str, Any]]]:
    """Every cell of the local days first..last: the rollup's rows, and the results themselves for the days marked
    dirty (changed since their rollup was built), so that each figure counts exactly the rows its drill-down lists
    while paying only for the days not rebuilt yet."""
    dirty = reconciliation_dirty_days(first=first, last=last)
    clean = (
        ReconciliationDaily.objects.filter(day__gte=first, day__lte=last)
        .exclude(day__in=dirty)
        .values_list("day", "rule_id", "left_system", "right_system", "entity", *COUNTED)
    )
    for row in clean.iterator(chunk_size=5000):
        yield row[:5], dict(zip(COUNTED, row[5:], strict=True))
    yield from reconciliation_cells(days=dirty).items()


def reconciliation_match_rates_all(*, first: date, last: date) -> dict[str, list[dict]]:
    """`reconciliation_match_rates` for every grouping at once (the same rows, keys and order) over the local days
    first..last, folded from the daily rollup (`ReconciliationDaily`: rules x system pairs x entities x days, never
    the results' history), the days not rebuilt yet read from the results."""
    names = dict(ReconciliationRule.objects.values_list("id", "name"))
    zone = ZoneInfo(settings.DASHBOARD_TIME_ZONE)
    folded: dict[str, dict[tuple, dict]] = {by: {} for by in GROUPINGS}
    for (day, rule_id, left_system, right_system, entity), counts in _period_cells(first, last):
        monday = day - timedelta(days=day.weekday())
        cell = {
            "rule_id": rule_id,
            "rule__name": names.get(rule_id, ""),
            "left_system": left_system,
            "right_system": right_system,
            "entity": entity,
            "week": datetime.combine(monday, time.min, tzinfo=zone),
        }
        for by, fields in GROUPINGS.items():
            key = tuple(cell[f] for f in fields)
            row = folded[by].get(key)
            if row is None:
                row = folded[by][key] = {f: cell[f] for f in fields}
                row |= {status: 0 for status in STATUSES} | {"total": 0, "amount_at_stake": Decimal(0)}
            for status in STATUSES:
                row[status] += counts[status]
                row["total"] += counts[status]
            row["amount_at_stake"] += counts["amount_at_stake"] or Decimal(0)
    out = {}
    for by, rows in folded.items():
        rows = {key: row for key, row in rows.items() if row["total"]}
        for row in rows.values():
            decided = row["matched"] + row["mismatched"]
            row["match_rate"] = row["matched"] / decided if decided else None
        out[by] = sorted(rows.values(), key=lambda r, by=by: (-r["total"], str([r[f] for f in GROUPINGS[by]])))
    return out


def reconciliation_dashboard(*, first: date, last: date) -> ReconciliationDashboard:
    """Match rates per rule, system pair, entity and week of results whose events occurred in the local days
    first..last (DASHBOARD_TIME_ZONE), and the open mismatches (of any time: they are still to be worked), the
    largest amounts first."""
    since, until = day_bounds(first, last)
    board = ReconciliationDashboard(since=since, until=until)
    grouped = reconciliation_match_rates_all(first=first, last=last)
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

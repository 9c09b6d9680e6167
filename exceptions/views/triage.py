"""The triage console for finance operations: the queues and a queue's cases, with filters, sorting, saved views and
bulk actions (a case and the actions on it: exceptions/views/cases.py).

Plain function views in the house style of transactions/views/: reads through selectors, writes through the
services (which check the actor's queue and the version the page was based on, and audit in the same transaction).
A DomainError becomes a message and a form error, NotPermitted a 403, never a 500.
"""

from datetime import UTC, timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from console.lib.audit import actor_for
from console.lib.capabilities import VIEW_CASES
from console.lib.errors import DomainError
from console.lib.exports import Keyset, audited_csv_export, export_rows
from console.lib.panels import render_panels
from console.lib.saved_views import saved_view_list
from console.lib.views import get_or_404
from exceptions import selectors
from exceptions.choices import ACTIVE_STATUSES, PRIORITIES, CaseStatus
from exceptions.filters import SEEN_WITHIN_CHOICES, CaseFilterSet
from exceptions.forms import (
    BULK_ACTIONS,
    BulkActionForm,
)
from exceptions.models import Case, Queue
from exceptions.permissions import can_act_on_queue
from exceptions.services import (
    cases_bulk,
)

QUEUE_PAGE = 50
# The order of selectors.case_list: priority first, then the newest occurrence.
MOST_URGENT = Keyset("priority", "-last_seen", "-id")
# The queue page's orders (`?sort=`): a column's name sorts by what the column shows, ascending; a leading "-",
# descending. Apart from priority, every keyset runs one way and ends with the id, so that an index (queue, column,
# id) reads it in order, forwards or backwards, and a page of 50 never sorts the whole queue.
QUEUE_SORTS: dict[str, Keyset] = {
    "priority": MOST_URGENT,
    "-priority": Keyset("-priority", "last_seen", "id"),
    "age": Keyset("-first_seen", "-id"),
    "-age": Keyset("first_seen", "id"),
    "last_seen": Keyset("last_seen", "id"),
    "-last_seen": Keyset("-last_seen", "-id"),
    "occurrences": Keyset("occurrence_count", "id"),
    "-occurrences": Keyset("-occurrence_count", "-id"),
    "amount": Keyset("amount_at_stake", "id"),
    "-amount": Keyset("-amount_at_stake", "-id"),
}
DEFAULT_SORT = "priority"
# A header's first click asks for the pressing end first: P1, the oldest, the latest, the most, the largest.
FIRST_CLICK = {
    "priority": "priority",
    "age": "-age",
    "last_seen": "-last_seen",
    "occurrences": "-occurrences",
    "amount": "-amount",
}
# Query parameters that belong to one visit of the page, not to its filter.
TRANSIENT = ("cursor", "format", "queue")
DATETIME_LOCAL = "%Y-%m-%dT%H:%M"
CSV_HEADER = [
    "id",
    "priority",
    "status",
    "title",
    "category",
    "system",
    "kind",
    "occurrences",
    "amount_at_stake",
    "currency",
    "first_seen",
    "last_seen",
    "resolve_due_at",
    "assignee",
    "queue",
]
# A saved view of a queue page keeps its queue in the query, because saved views go back to an argument-free URL.
SAVED_VIEW_PAGE = "queue"
MAX_FAILURE_MESSAGES = 10


def _span(delta: timedelta) -> str:
    """A target the way operators say it: 4 h, 2 d, 1 d 12 h."""
    days, minutes = divmod(int(delta.total_seconds() // 60), 1440)
    hours, minutes = divmod(minutes, 60)
    return " ".join(f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (minutes, "min")) if n) or "0 min"


def _targets(queue: Queue) -> str:
    return f"triage {_span(queue.triage_target)}, resolve {_span(queue.resolve_target)}"


# ---- Queues ---------------------------------------------------------------------------------------------------------


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def queue_list(request: HttpRequest) -> HttpResponse:
    wanted = request.GET.get("queue", "")
    if wanted:
        # Saved views of queue pages come back here with their queue in the query (see SAVED_VIEW_PAGE).
        return _redirect_to_queue(wanted, request.GET)
    now = timezone.now()
    summaries = selectors.queue_summaries(queues=selectors.queue_list_for(user=request.user), now=now)
    return render(
        request,
        "exceptions/queue_list.html",
        {
            "rows": [(summary, _targets(summary.queue)) for summary in summaries],
            "summaries": summaries,
            "unread": selectors.notification_unread_count(user=request.user),
        },
    )


def _redirect_to_queue(slug: str, params: QueryDict) -> HttpResponse:
    queue = get_or_404(selectors.queue_get, slug=slug)
    query = params.copy()
    query.pop("queue", None)
    target = reverse("queue-detail", args=[queue.slug])
    return redirect(f"{target}?{query.urlencode()}" if query else target)


def _csv_row(case: Case) -> list:
    return [
        case.pk,
        f"P{case.priority}",
        case.status,
        case.title,
        case.category.slug,
        case.system,
        case.kind,
        case.occurrence_count,
        case.amount_at_stake,
        case.currency,
        case.first_seen.isoformat(),
        case.last_seen.isoformat(),
        case.resolve_due_at.isoformat() if case.resolve_due_at else "",
        case.assignee.get_username() if case.assignee else "",
        case.queue.slug,
    ]


def _filter_data(request: HttpRequest) -> QueryDict:
    data = request.GET.copy()
    # The queue is in the path; the default list is the work still to do (open, in progress, waiting).
    data.pop("queue", None)
    if "active" not in data and "status" not in data:
        data["active"] = "true"
    return data


def _age(delta: timedelta) -> str:
    """An age in one short unit, for a column that must stay one line: 12 min, 5 h, 23 d."""
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 1440:
        return f"{minutes // 60} h"
    return f"{minutes // 1440} d"


def _href(query: QueryDict, **replace: str | None) -> str:
    """This page's link with some parameters replaced (None drops one); paging always starts again."""
    changed = query.copy()
    changed.pop("cursor", None)
    for name, value in replace.items():
        changed.pop(name, None)
        if value is not None:
            changed[name] = value
    return f"?{changed.urlencode()}" if changed else "?"


def _sort_headers(query: QueryDict, current: str) -> dict[str, dict[str, str]]:
    """Each sortable column's link (a click on the sorted column reverses it) and the state a screen reader hears."""
    headers = {}
    for column, first in FIRST_CLICK.items():
        if current.lstrip("-") == column:
            wanted = column if current.startswith("-") else f"-{column}"
            state = "descending" if current.startswith("-") else "ascending"
        else:
            wanted, state = first, "none"
        arrow = {"ascending": "▲", "descending": "▼"}.get(state, "")
        headers[column] = {
            "href": _href(query, sort=wanted),
            "state": state,
            "arrow": arrow,
            "name": column.replace("_", " "),
        }
    return headers


def _chip_label(filterset: CaseFilterSet, name: str, value: str) -> str:
    fields = filterset.form.fields
    if name == "status":
        return f"Status: {dict(CaseStatus.choices).get(value, value)}"
    if name == "priority":
        return f"Priority: P{value}"
    if name in ("active", "overdue"):
        label = fields[name].label
        return label if value.lower() in ("true", "1", "yes", "on") else f"Not: {label.lower()}"
    if name == "seen_within":
        return f"Last seen: {dict(SEEN_WITHIN_CHOICES).get(value, value)}"
    if name in ("seen_since", "seen_until"):
        when = "from" if name == "seen_since" else "before"
        return f"Last seen {when} {value.replace('T', ' ')}"
    if name == "assignee" and value.strip().lower() == "none":
        return "Unassigned"
    if name == "q":
        return f"Text: “{value}”"
    return f"{name.capitalize()}: {value}"


def _filter_chips(filterset: CaseFilterSet, query: QueryDict) -> list[dict[str, str]]:
    """The filters in force, one removable chip per value, in the order of the query string."""
    chips = []
    for name, values in query.lists():
        if name not in filterset.filters or name == "queue":
            continue
        for value in values:
            if value == "":
                continue
            rest = query.copy()
            rest.pop("cursor", None)
            rest.setlist(name, [v for v in values if v != value])
            chips.append({"label": _chip_label(filterset, name, value), "href": f"?{rest.urlencode()}"})
    return chips


def _local_value(filterset: CaseFilterSet, name: str) -> str:
    # A date picker (<input type="datetime-local">) takes only "YYYY-MM-DDTHH:MM"; the filter's times are UTC.
    cleaned = getattr(filterset.form, "cleaned_data", {}).get(name)
    return cleaned.astimezone(UTC).strftime(DATETIME_LOCAL) if cleaned else ""


def _filter_controls(filterset: CaseFilterSet, request: HttpRequest) -> dict[str, Any]:
    """What the filter bar shows: chips to toggle (status, priority, recency) and the fields' current values."""
    statuses = request.GET.getlist("status")
    if not statuses and "active" not in request.GET:
        statuses = list(ACTIVE_STATUSES)  # the default list, shown as the chips it amounts to
    priorities = request.GET.getlist("priority")
    within = request.GET.get("seen_within", "")
    category = filterset.form["category"]
    category.field.widget.attrs["class"] = f"{category.field.widget.attrs.get('class', '')} w-auto"
    return {
        "statuses": [(value, label, value in statuses) for value, label in CaseStatus.choices],
        "priorities": [(str(value), label, str(value) in priorities) for value, label in PRIORITIES],
        "ranges": [("", "any time", not within)]
        + [(value, label, value == within) for value, label in SEEN_WITHIN_CHOICES],
        "overdue": request.GET.get("overdue", "").lower() == "true",
        "active": request.GET.get("active", ""),
        "category": category,
        "seen_since": _local_value(filterset, "seen_since"),
        "seen_until": _local_value(filterset, "seen_until"),
        "errors": [
            f"{filterset.form.fields[n].label or n}: {e}" for n, errs in filterset.form.errors.items() for e in errs
        ]
        if filterset.form.is_bound
        else [],
    }


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def queue_detail(request: HttpRequest, slug: str) -> HttpResponse:
    queue = get_or_404(selectors.queue_get, slug=slug)
    if request.GET.get("queue", slug) != slug:
        return _redirect_to_queue(request.GET["queue"], request.GET)
    base = selectors.case_list().filter(queue=queue)
    filterset = CaseFilterSet(_filter_data(request), queryset=base)
    cases = filterset.qs if filterset.is_valid() else base.none()
    if request.GET.get("format") == "csv":
        return audited_csv_export(
            actor=actor_for(request.user),
            action="cases.exported",
            object_type="exceptions.case",
            params=request.GET,
            filename=f"cases-{queue.slug}.csv",
            header=CSV_HEADER,
            rows=export_rows(cases, _csv_row),
            context={"queue": queue.slug},
        )
    sort = request.GET.get("sort") or DEFAULT_SORT
    sort_error = ""
    if sort not in QUEUE_SORTS:
        sort_error = f"Cannot sort by {sort[:40]!r}: choose one of {', '.join(sorted(QUEUE_SORTS))}."
        sort = DEFAULT_SORT
    page, next_cursor = QUEUE_SORTS[sort].page(cases, cursor=request.GET.get("cursor"), size=QUEUE_PAGE)
    query = request.GET.copy()
    for transient in TRANSIENT:
        query.pop(transient, None)
    saved_query = query.copy()
    saved_query["queue"] = queue.slug
    now = timezone.now()
    can_act = can_act_on_queue(request.user, queue)
    members = selectors.queue_member_list(queue=queue)
    return render(
        request,
        "exceptions/queue_detail.html",
        {
            "queue": queue,
            "targets": _targets(queue),
            # What higher apps show on a queue (SLA clocks at risk), without this app importing them.
            "panels": render_panels("queue_detail", request=request, queue=queue),
            "filter": filterset,
            "controls": _filter_controls(filterset, request),
            "chips": _filter_chips(filterset, query),
            "sort": sort,
            "sort_error": sort_error,
            "headers": _sort_headers(query, sort),
            "cases": page,
            "rows": [(case, _age(now - case.first_seen)) for case in page],
            "late": {c.pk for c in page if c.status in ACTIVE_STATUSES and c.resolve_due_at and c.resolve_due_at < now},
            "next_cursor": next_cursor,
            "query": query.urlencode(),
            "saved_views": saved_view_list(user=request.user, page=SAVED_VIEW_PAGE),
            "saved_view_page": SAVED_VIEW_PAGE,
            # The saved-views partial saves `request.GET`; this one also names the queue (the path does not survive).
            "saved_view_request": {"GET": saved_query},
            "can_act": can_act,
            "bulk_form": BulkActionForm(members=members) if can_act else None,
        },
        # An order the page does not know is a bad request, said on the page (the list falls back to the default).
        status=400 if sort_error else 200,
    )


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
@require_POST
def queue_bulk(request: HttpRequest, slug: str) -> HttpResponse:
    queue = get_or_404(selectors.queue_get, slug=slug)
    if not can_act_on_queue(request.user, queue):
        raise PermissionDenied("you may only act on cases in the queues you belong to")
    back = reverse("queue-detail", args=[queue.slug])
    # Re-encoded, so that only a query string of this page can come back from the form.
    query = QueryDict(request.POST.get("query", "")).urlencode()
    if query:
        back = f"{back}?{query}"
    form = BulkActionForm(request.POST, members=selectors.queue_member_list(queue=queue))
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, f"Nothing changed: {error}")
        return redirect(back)
    action, params = form.service_call(request.user)
    try:
        result = cases_bulk(action=action, versions=form.cleaned_data["versions"], actor=request.user, **params)
    except DomainError as exc:
        messages.error(request, f"Nothing changed: {exc}")
        return redirect(back)
    label = BULK_ACTIONS[form.cleaned_data["action"]]
    summary = f"{label}: {len(result.done)} done, {len(result.failed)} failed."
    (messages.warning if result.failed else messages.success)(request, summary)
    for case_id, reason in list(result.failed.items())[:MAX_FAILURE_MESSAGES]:
        messages.error(request, f"Case #{case_id}: {reason}")
    return redirect(back)


# ---- A case ---------------------------------------------------------------------------------------------------------

"""The case page and every action on it, and notifications: the part of the triage console a finance operations user
works in after opening a case from a queue (exceptions/views/triage.py).

Plain function views in the house style of transactions/views/: reads through selectors, writes through the
services (which check the actor's queue and the version the page was based on, and audit in the same transaction).
A DomainError becomes a message and a form error, NotPermitted a 403, never a 500. Actions answer htmx requests
with the changed part of the page only.
"""

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponsePermanentRedirect, QueryDict
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from console.lib.capabilities import EDIT_RULES, VIEW_CASES
from console.lib.errors import DomainError, NotPermitted, StaleVersion
from console.lib.views import get_or_404
from exceptions import selectors
from exceptions.choices import ACTIVE_STATUSES, CASE_TRANSITIONS, UNCLASSIFIED, CaseStatus
from exceptions.forms import (
    AssignForm,
    CaseForm,
    CommentForm,
    MergeForm,
    ReplayForm,
    SnoozeForm,
    SplitForm,
    TransitionForm,
)
from exceptions.models import Case, ExceptionRecord
from exceptions.permissions import can_act_on_case
from exceptions.services import (
    case_assign,
    case_comment,
    case_transition,
    cases_merge,
    notifications_mark_read,
    occurrence_split,
    replay_request,
)
from transactions import selectors as transaction_selectors
from transactions.charts import timeline_chart

LINKED_TRANSACTIONS = 3
OCCURRENCE_PAGE = 10


def _linked_transactions(case: Case) -> list[dict]:
    """Up to three transactions of the case's occurrences, the latest failing first. Only the first is drawn (with
    the step that failed): a timeline costs a query and a figure each, and the others are one click away."""
    linked, seen = [], set()
    for txn_id in selectors.case_transaction_ids(case=case, limit=LINKED_TRANSACTIONS):
        try:
            txn = transaction_selectors.transaction_resolve(txn_id=txn_id)
        except ObjectDoesNotExist:
            continue
        if txn.pk in seen:
            continue
        seen.add(txn.pk)
        linked.append({"txn": txn, "chart": None, "failing": None})
    if linked:
        first = linked[0]
        timeline = transaction_selectors.transaction_timeline(txn=first["txn"])
        first["chart"] = timeline_chart(timeline)
        first["failing"] = _failing_step(timeline, case)
    return linked


def _failing_step(timeline: dict, case: Case) -> dict | None:
    """The timeline item of the case's latest failure in this transaction, else its latest failed item."""
    failed = [i for i in timeline["items"] if i["status"] == "error"]
    own = [i for i in failed if i["system"] == case.system and i["kind"] == case.kind]
    return (own or failed or [None])[-1]


def _replayable(occurrences: list[ExceptionRecord]) -> list[ExceptionRecord]:
    # A signal (an SLA's silence) records a condition, not a failed record: there is nothing to send again.
    return [o for o in occurrences if o.event_id is not None]


def _case_forms(request: HttpRequest, case: Case, occurrences: list) -> dict[str, CaseForm | None]:
    allowed = CASE_TRANSITIONS.get(case.status, set())
    replayable = _replayable(occurrences)
    return {
        "assign": AssignForm(case=case, actor=request.user, members=selectors.queue_member_list(queue=case.queue)),
        "comment": CommentForm(case=case),
        "transition": TransitionForm(case=case) if allowed - {CaseStatus.IGNORED} else None,
        "snooze": SnoozeForm(case=case) if CaseStatus.IGNORED in allowed else None,
        "merge": MergeForm(case=case),
        "split": SplitForm(case=case, occurrences=occurrences) if case.occurrence_count > 1 else None,
        "replay": ReplayForm(case=case, occurrences=replayable) if case.category.retryable and replayable else None,
    }


def _case_page(
    request: HttpRequest, case: Case, *, bound: dict[str, CaseForm] | None = None, status: int = 200
) -> HttpResponse:
    occurrences = list(selectors.case_occurrences(case=case))
    can_act = can_act_on_case(request.user, case)
    forms = _case_forms(request, case, occurrences) if can_act else {}
    forms.update(bound or {})
    late = case.status in ACTIVE_STATUSES and case.resolve_due_at is not None and case.resolve_due_at < timezone.now()
    context = {
        "case": case,
        "late": late,
        "history": list(reversed(selectors.case_history(case=case))),  # newest first: what just happened is on top
        "can_act": can_act,
        "forms": forms,
        "can_resolve": can_act and CaseStatus.RESOLVED in CASE_TRANSITIONS.get(case.status, set()),
        "assigned_to_me": case.assignee_id == request.user.pk,
        "can_classify": case.category.slug == UNCLASSIFIED
        and (can_act or request.user.has_perm(EDIT_RULES))
        and not case.merged_into_id,
    }
    if request.htmx and request.method == "POST":
        # An action from the page itself: only the part it changed, so that the page keeps its scroll position.
        return render(request, "exceptions/_case_live.html", context, status=status)
    paginator = Paginator(occurrences, OCCURRENCE_PAGE)
    page = paginator.get_page(request.GET.get("occurrences"))
    context.update(
        occurrences=occurrences,
        occurrence_page=page,
        latest=occurrences[0] if occurrences else None,
        linked=_linked_transactions(case),
    )
    return render(request, "exceptions/case_detail.html", context, status=status)


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def case_detail(request: HttpRequest, case_id: int) -> HttpResponse:
    case = get_or_404(selectors.case_get, case_id=case_id)
    if case.merged_into_id:
        return HttpResponsePermanentRedirect(reverse("case-detail", args=[selectors.case_live_id(case_id=case.pk)]))
    return _case_page(request, case)


FormBuilder = Callable[[HttpRequest, Case, QueryDict], CaseForm]
Performer = Callable[[HttpRequest, Case, Any], str]


def _case_action(request: HttpRequest, case_id: int, name: str, build: FormBuilder, perform: Performer) -> HttpResponse:
    """Validate the posted form, call the service, and answer: a redirect with a message, the page again with the
    form's errors (400, or 409 for a stale version), or 403. From htmx (the page's own forms), the same answers as
    the fragment the action changed (state, actions, activity), swapped in place."""
    case = get_or_404(selectors.case_get, case_id=case_id)
    if not can_act_on_case(request.user, case):
        raise PermissionDenied("you may only act on cases in the queues you belong to")
    if case.merged_into_id:
        live = selectors.case_live_id(case_id=case.pk)
        messages.error(request, f"Nothing changed: case #{case.pk} was merged into case #{live}; act on that one.")
        if request.htmx:
            return HttpResponseClientRedirect(reverse("case-detail", args=[live]))
        return redirect("case-detail", case_id=live)
    form = build(request, case, request.POST)
    if not form.is_valid():
        return _case_page(request, case, bound={name: form}, status=400)
    try:
        done = perform(request, case, form)
    except NotPermitted as exc:
        raise PermissionDenied(str(exc)) from exc
    except DomainError as exc:
        status = exc.status_code
        if isinstance(exc, StaleVersion):
            # Show the case as it is now; the form keeps what was typed but carries the new version, so that
            # submitting it again is a decision taken on the current state.
            case = selectors.case_get(case_id=case.pk)
            data = request.POST.copy()
            data["version"] = str(case.version)
            form = build(request, case, data)
            form.is_valid()
        form.add_error(None, str(exc))
        messages.error(request, f"Nothing changed: {exc}")
        return _case_page(request, case, bound={name: form}, status=status)
    messages.success(request, done)
    if request.htmx:
        return _case_page(request, selectors.case_get(case_id=case.pk))
    return redirect("case-detail", case_id=case.pk)


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
@require_POST
def case_assign_view(request: HttpRequest, case_id: int) -> HttpResponse:
    def build(request: HttpRequest, case: Case, data: QueryDict) -> CaseForm:
        return AssignForm(data, case=case, actor=request.user, members=selectors.queue_member_list(queue=case.queue))

    def perform(request: HttpRequest, case: Case, form: AssignForm) -> str:
        assignee = form.cleaned_data["assignee"]
        case_assign(
            case_id=case.pk, assignee=assignee, actor=request.user, expected_version=form.cleaned_data["version"]
        )
        return f"Case #{case.pk} assigned to {assignee.get_username() if assignee else 'nobody'}."

    return _case_action(request, case_id, "assign", build, perform)


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
@require_POST
def case_comment_view(request: HttpRequest, case_id: int) -> HttpResponse:
    def perform(request: HttpRequest, case: Case, form: CommentForm) -> str:
        case_comment(
            case_id=case.pk,
            body=form.cleaned_data["body"],
            actor=request.user,
            expected_version=form.cleaned_data["version"],
        )
        return "Comment added."

    return _case_action(request, case_id, "comment", lambda r, c, d: CommentForm(d, case=c), perform)


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
@require_POST
def case_transition_view(request: HttpRequest, case_id: int) -> HttpResponse:
    def perform(request: HttpRequest, case: Case, form: TransitionForm) -> str:
        moved = case_transition(
            case_id=case.pk,
            status=form.cleaned_data["status"],
            note=form.cleaned_data["note"],
            actor=request.user,
            expected_version=form.cleaned_data["version"],
        )
        return f"Case #{case.pk} is now {moved.get_status_display().lower()}."

    return _case_action(request, case_id, "transition", lambda r, c, d: TransitionForm(d, case=c), perform)


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
@require_POST
def case_snooze_view(request: HttpRequest, case_id: int) -> HttpResponse:
    def perform(request: HttpRequest, case: Case, form: SnoozeForm) -> str:
        condition = form.snooze()
        case_transition(
            case_id=case.pk,
            status=CaseStatus.IGNORED,
            note=form.cleaned_data["note"],
            actor=request.user,
            expected_version=form.cleaned_data["version"],
            **condition,
        )
        if condition["snooze_until"]:
            return f"Case #{case.pk} snoozed until {form.cleaned_data['until']:%Y-%m-%d}."
        return f"Case #{case.pk} snoozed for {condition['snooze_occurrences']} more occurrence(s)."

    return _case_action(request, case_id, "snooze", lambda r, c, d: SnoozeForm(d, case=c), perform)


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
@require_POST
def case_merge_view(request: HttpRequest, case_id: int) -> HttpResponse:
    def perform(request: HttpRequest, case: Case, form: MergeForm) -> str:
        sources = form.cleaned_data["cases"]
        cases_merge(
            target_id=case.pk, source_ids=sources, actor=request.user, expected_version=form.cleaned_data["version"]
        )
        return f"Merged {', '.join(f'#{i}' for i in sources)} into case #{case.pk}."

    return _case_action(request, case_id, "merge", lambda r, c, d: MergeForm(d, case=c), perform)


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
@require_POST
def case_split_view(request: HttpRequest, case_id: int) -> HttpResponse:
    def build(request: HttpRequest, case: Case, data: QueryDict) -> CaseForm:
        return SplitForm(data, case=case, occurrences=list(selectors.case_occurrences(case=case)))

    def perform(request: HttpRequest, case: Case, form: SplitForm) -> str:
        new = occurrence_split(
            occurrence_id=form.cleaned_data["occurrence"],
            actor=request.user,
            message_contains=form.cleaned_data["message_contains"],
            expected_version=form.cleaned_data["version"],
        )
        return f"Occurrence split out into case #{new.pk}."

    return _case_action(request, case_id, "split", build, perform)


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
@require_POST
def case_replay_view(request: HttpRequest, case_id: int) -> HttpResponse:
    def build(request: HttpRequest, case: Case, data: QueryDict) -> CaseForm:
        return ReplayForm(data, case=case, occurrences=_replayable(list(selectors.case_occurrences(case=case))))

    def perform(request: HttpRequest, case: Case, form: ReplayForm) -> str:
        replay = replay_request(
            case_id=case.pk,
            actor=request.user,
            expected_version=form.cleaned_data["version"],
            occurrence_id=form.cleaned_data["occurrence"],
            payload=form.cleaned_data["payload"],
            reason=form.cleaned_data["reason"],
        )
        return f"Replay {replay.pk} queued for {replay.target_url}; the case resolves when the success event arrives."

    return _case_action(request, case_id, "replay", build, perform)


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def case_timeline(request: HttpRequest, case_id: int, txn_id: int) -> HttpResponse:
    """The timeline of one more transaction of a case, drawn on demand from the case page."""
    case = get_or_404(selectors.case_get, case_id=case_id)
    if txn_id not in selectors.case_transaction_ids(case=case, limit=LINKED_TRANSACTIONS):
        raise Http404("not a transaction of this case")
    txn = get_or_404(transaction_selectors.transaction_resolve, txn_id=txn_id)
    timeline = transaction_selectors.transaction_timeline(txn=txn)
    return render(
        request,
        "exceptions/_case_timeline.html",
        {"txn": txn, "chart": timeline_chart(timeline), "failing": _failing_step(timeline, case)},
    )


# ---- The cases panel on a transaction's page ------------------------------------------------------------------------


def transaction_cases_panel(*, request: HttpRequest, txn: Any, **context: Any) -> str | None:
    """Registered for the transactions app's page (console.lib.panels): the cases of this transaction, or nothing."""
    if not request.user.has_perm(VIEW_CASES):
        return None
    cases = list(selectors.case_list_for_transaction(txn_id=txn.pk)[:50])
    if not cases:
        return None
    return render_to_string("exceptions/_case_transaction_panel.html", {"cases": cases}, request=request)


# ---- Notifications --------------------------------------------------------------------------------------------------


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def notification_list(request: HttpRequest) -> HttpResponse:
    unread_only = request.GET.get("unread") == "1"
    return render(
        request,
        "exceptions/notification_list.html",
        {
            "notifications": selectors.notification_list(user=request.user, unread_only=unread_only),
            "unread": selectors.notification_unread_count(user=request.user),
            "unread_only": unread_only,
        },
    )


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
@require_POST
def notification_read(request: HttpRequest) -> HttpResponse:
    ids = [int(i) for i in request.POST.getlist("notification") if i.isdigit()]
    marked = notifications_mark_read(user=request.user, ids=None if request.POST.get("all") == "1" else ids)
    messages.success(request, f"{marked} notification{'s' if marked != 1 else ''} marked as read.")
    return redirect("notification-list")

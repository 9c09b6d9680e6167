"""Managers' configuration pages: taxonomy and its gap, classification and routing rules (with previews), queues.

Plain function views in the house style of transactions/views/: reads through selectors, writes through the audited
services (services/configuration.py and services/queues.py), and a DomainError becomes a form error or a message,
never a 500. Every page needs `console.edit_rules`, except the taxonomy gap, which compliance
(`console.view_dashboards`) may read too.
"""

from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES, VIEW_DASHBOARDS
from console.lib.errors import DomainError
from console.lib.views import active_write, confirmed_write, form_write, get_or_404, posted
from exceptions import selectors, services
from exceptions.forms import CategoryForm, ClassificationRuleForm, QueueForm, QueueMemberForm, RoutingRuleForm
from exceptions.models import Category, ClassificationRule, RoutingRule
from exceptions.selectors import NEW_RULE_ID, ROUTING_PREVIEW_SAMPLE, routing_specs
from transactions.durations import duration_label

GAP_ON_TAXONOMY_PAGE = 10
# Fields a taxonomy-gap row may pre-fill on a new classification rule.
PREFILL_FIELDS = ("name", "category", "system", "kind", "error_code", "error_type")


def _any_permission(*perms: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """403 unless the user holds at least one of `perms` (permission_required asks for all of them)."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not any(request.user.has_perm(p) for p in perms):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


def _glob_literal(value: str) -> str:
    # A value taken from the data may hold glob characters; in brackets they match only themselves.
    return "".join(f"[{c}]" if c in "*?[" else c for c in value)


# ---- Taxonomy -------------------------------------------------------------------------------------------------------


def _gap_links(rows: list[selectors.GapRow]) -> list[tuple[selectors.GapRow, str]]:
    """Each gap row with the URL of a new classification rule pre-filled from it."""
    base = reverse("classification-rule-create")
    linked = []
    for row in rows:
        query = {
            "name": f"{row.system} {row.kind} {row.error_code}".strip()[:120],
            "system": _glob_literal(row.system),
            "kind": _glob_literal(row.kind),
            "error_code": _glob_literal(row.error_code),
        }
        linked.append((row, f"{base}?{urlencode({k: v for k, v in query.items() if v})}"))
    return linked


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
def taxonomy(request: HttpRequest) -> HttpResponse:
    gap = selectors.taxonomy_gap(now=timezone.now(), limit=GAP_ON_TAXONOMY_PAGE + 1)
    context = {
        "categories": selectors.category_list(),
        "gap": _gap_links(gap[:GAP_ON_TAXONOMY_PAGE]),
        "gap_more": len(gap) > GAP_ON_TAXONOMY_PAGE,
        "proposed": selectors.cases_with_rule_proposals(case_ids=[r.case_id for r in gap if r.case_id]),
    }
    return render(request, "exceptions/taxonomy.html", context)


@login_required
@_any_permission(EDIT_RULES, VIEW_DASHBOARDS)
def taxonomy_gap(request: HttpRequest) -> HttpResponse:
    rows = selectors.taxonomy_gap(now=timezone.now())
    context = {
        "gap": _gap_links(rows),
        "proposed": selectors.cases_with_rule_proposals(case_ids=[r.case_id for r in rows if r.case_id]),
        "totals": {"last_7_days": sum(r.last_7_days for r in rows), "last_30_days": sum(r.last_30_days for r in rows)},
        "can_edit": request.user.has_perm(EDIT_RULES),
    }
    return render(request, "exceptions/taxonomy_gap.html", context)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def category_create(request: HttpRequest) -> HttpResponse:
    form = CategoryForm(posted(request))
    created = form_write(
        request,
        form,
        lambda: services.category_create(actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda category: f"Category {category.name} created.",
    )
    if created is not None:
        return redirect("taxonomy")
    return render(request, "exceptions/taxonomy_category_form.html", {"form": form, "category": None})


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def category_edit(request: HttpRequest, category_id: int) -> HttpResponse:
    category = get_or_404(Category.objects.get, pk=category_id)
    form = CategoryForm(posted(request), instance=category)
    saved = form_write(
        request,
        form,
        lambda: services.category_update(category=category, actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda category: f"Category {category.name} saved.",
    )
    if saved is not None:
        return redirect("taxonomy")
    return render(request, "exceptions/taxonomy_category_form.html", {"form": form, "category": category})


# ---- Classification rules -------------------------------------------------------------------------------------------


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
def classification_rule_list(request: HttpRequest) -> HttpResponse:
    context = {"rules": selectors.classification_rule_list(now=timezone.now()), "days": selectors.PREVIEW_DAYS}
    return render(request, "exceptions/rule_classification_list.html", context)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_POST
def classification_rule_reorder(request: HttpRequest) -> HttpResponse:
    """The list page's order form: one `position-<rule id>` field per rule."""
    positions: dict[int, int] = {}
    for name, value in request.POST.items():
        if not name.startswith("position-"):
            continue
        rule_id, text = name.removeprefix("position-"), value.strip()
        if not rule_id.isdigit() or not text.isdigit():
            messages.error(request, f"Positions are whole numbers from 0; {text or 'an empty value'!r} is not.")
            return redirect("classification-rule-list")
        positions[int(rule_id)] = int(text)
    try:
        moved = services.classification_rules_reorder(positions=positions, actor=actor_for(request.user))
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Order saved ({moved} rule{'s' if moved != 1 else ''} moved).")
    return redirect("classification-rule-list")


def _classification_rule_page(
    request: HttpRequest, form: ClassificationRuleForm, rule: ClassificationRule | None
) -> HttpResponse:
    """The form; with `preview` posted and a valid form, also what the rule as typed would match (nothing saved)."""
    preview = None
    if request.method == "POST" and "preview" in request.POST and form.is_valid():
        preview = selectors.classification_rule_preview(
            spec=form.spec(rule.pk if rule else NEW_RULE_ID),
            position=form.cleaned_data["position"],
            now=timezone.now(),
        )
    context = {
        "form": form,
        "rule": rule,
        "preview": preview,
        "previewed_active": form.cleaned_data.get("is_active", True) if preview else True,
    }
    return render(request, "exceptions/rule_classification_form.html", context)


def _after_rule_saved(rule: ClassificationRule) -> HttpResponse:
    """Saving a rule offers to move the open unclassified cases it now classifies (learning.py), when there are any."""
    if selectors.unclassified_cases_matching(rule=rule):
        return redirect("classification-rule-reclassify", rule_id=rule.pk)
    return redirect("classification-rule-list")


def _previewing(request: HttpRequest) -> bool:
    """The rule forms' Preview button posts the form to show its effect; nothing is saved."""
    return "preview" in request.POST


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def classification_rule_create(request: HttpRequest) -> HttpResponse:
    initial: dict[str, Any] = {k: request.GET[k] for k in PREFILL_FIELDS if request.GET.get(k)}
    if "category" in initial:
        initial["category"] = Category.objects.filter(slug=initial["category"]).first()
    form = ClassificationRuleForm(posted(request), initial=initial)
    created = form_write(
        request,
        form,
        lambda: services.classification_rule_create(actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda rule: f"Classification rule {rule} created.",
        ready=not _previewing(request),
    )
    if created is not None:
        return _after_rule_saved(created)
    return _classification_rule_page(request, form, None)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def classification_rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.classification_rule_get, rule_id=rule_id)
    form = ClassificationRuleForm(posted(request), instance=rule)
    saved = form_write(
        request,
        form,
        lambda: services.classification_rule_update(rule=rule, actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda rule: f"Classification rule {rule} saved.",
        ready=not _previewing(request),
    )
    if saved is not None:
        return _after_rule_saved(saved)
    return _classification_rule_page(request, form, rule)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_POST
def classification_rule_activate(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.classification_rule_get, rule_id=rule_id)
    return active_write(
        request,
        lambda active: services.classification_rule_set_active(
            rule=rule, is_active=active, actor=actor_for(request.user)
        ),
        noun="Classification rule",
        back=reverse("classification-rule-list"),
    )


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def classification_rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.classification_rule_get, rule_id=rule_id)
    return confirmed_write(
        request,
        title="Delete classification rule",
        message=f"Rule #{rule.pk} ({rule}) will no longer classify failures; the next rule that matches them "
        "will, or they become a taxonomy gap. Cases it classified keep their category.",
        button="Delete rule",
        back=reverse("classification-rule-list"),
        write=lambda: services.classification_rule_delete(rule=rule, actor=actor_for(request.user)),
        done=f"Classification rule {rule} deleted.",
    )


# ---- Routing rules --------------------------------------------------------------------------------------------------


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
def routing_rule_list(request: HttpRequest) -> HttpResponse:
    # What "Re-route open cases" would do right now: open cases the saved rules would put in another queue.
    moves = selectors.routing_moves(rules=routing_specs())
    context = {
        "rules": selectors.routing_rule_list(),
        "moves": moves[:ROUTING_PREVIEW_SAMPLE],
        "move_count": len(moves),
        "categories": dict(Category.objects.values_list("slug", "name")),
    }
    return render(request, "exceptions/rule_routing_list.html", context)


def _routing_rule_page(request: HttpRequest, form: RoutingRuleForm, rule: RoutingRule | None) -> HttpResponse:
    """The form; with `preview` posted and a valid form, also the open cases that would change queue (nothing saved)."""
    preview = None
    if request.method == "POST" and "preview" in request.POST and form.is_valid():
        rules = selectors.routing_specs_as_typed(
            spec=form.spec(rule.pk if rule else NEW_RULE_ID),
            position=form.cleaned_data["position"],
            is_active=form.cleaned_data["is_active"],
        )
        moves = selectors.routing_moves(rules=rules)
        preview = {"count": len(moves), "moves": moves[:ROUTING_PREVIEW_SAMPLE]}
    return render(request, "exceptions/rule_routing_form.html", {"form": form, "rule": rule, "preview": preview})


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def routing_rule_create(request: HttpRequest) -> HttpResponse:
    form = RoutingRuleForm(posted(request))
    created = form_write(
        request,
        form,
        lambda: services.routing_rule_create(actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda rule: f"Routing rule {rule} created. New cases follow it; open cases stay put.",
        ready=not _previewing(request),
    )
    if created is not None:
        return redirect("routing-rule-list")
    return _routing_rule_page(request, form, None)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def routing_rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.routing_rule_get, rule_id=rule_id)
    form = RoutingRuleForm(posted(request), instance=rule)
    saved = form_write(
        request,
        form,
        lambda: services.routing_rule_update(rule=rule, actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda rule: f"Routing rule {rule} saved. New cases follow it; open cases stay put.",
        ready=not _previewing(request),
    )
    if saved is not None:
        return redirect("routing-rule-list")
    return _routing_rule_page(request, form, rule)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def routing_rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.routing_rule_get, rule_id=rule_id)
    return confirmed_write(
        request,
        title="Delete routing rule",
        message=f"Rule #{rule.pk} ({rule}, to {rule.queue.name}) will no longer route new cases; the next rule "
        "that matches them will, or the default queue. Open cases stay in their queue until you re-route them.",
        button="Delete rule",
        back=reverse("routing-rule-list"),
        write=lambda: services.routing_rule_delete(rule=rule, actor=actor_for(request.user)),
        done=f"Routing rule {rule} deleted.",
    )


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_POST
def routing_reroute(request: HttpRequest) -> HttpResponse:
    moves = services.cases_reroute(actor=actor_for(request.user))
    if moves:
        messages.success(request, f"Moved {len(moves)} open case{'s' if len(moves) != 1 else ''} to their new queue.")
    else:
        messages.info(request, "Every open case is already in the queue the routing rules give it.")
    return redirect("routing-rule-list")


# ---- Queues ---------------------------------------------------------------------------------------------------------


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
def queue_manage_list(request: HttpRequest) -> HttpResponse:
    queues = list(selectors.queue_manage_list())
    for queue in queues:
        queue.triage_label = duration_label(queue.triage_target)  # type: ignore[attr-defined]
        queue.resolve_label = duration_label(queue.resolve_target)  # type: ignore[attr-defined]
    return render(request, "exceptions/manage_queue_list.html", {"queues": queues})


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def queue_manage_create(request: HttpRequest) -> HttpResponse:
    form = QueueForm(posted(request))
    queue = form_write(
        request,
        form,
        lambda: services.queue_create(actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda queue: f"Queue {queue.name} created. Add its members below.",
    )
    if queue is not None:
        return redirect("queue-manage-edit", queue_id=queue.pk)
    return render(request, "exceptions/manage_queue_form.html", {"form": form, "queue": None})


def _queue_page(request: HttpRequest, queue: Any, form: QueueForm, member_form: QueueMemberForm) -> HttpResponse:
    context = {
        "queue": queue,
        "form": form,
        "member_form": member_form,
        "members": queue.members.order_by("username"),
    }
    return render(request, "exceptions/manage_queue_form.html", context)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def queue_manage_edit(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = get_or_404(selectors.queue_manage_get, queue_id=queue_id)
    form = QueueForm(posted(request), queue=queue)
    saved = form_write(
        request,
        form,
        lambda: services.queue_update(queue=queue, actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda queue: f"Queue {queue.name} saved.",
    )
    if saved is not None:
        return redirect("queue-manage-list")
    return _queue_page(request, queue, form, QueueMemberForm(queue=queue))


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_POST
def queue_member_add(request: HttpRequest, queue_id: int) -> HttpResponse:
    queue = get_or_404(selectors.queue_manage_get, queue_id=queue_id)
    member_form = QueueMemberForm(request.POST, queue=queue)
    if member_form.is_valid():
        user = member_form.cleaned_data["user"]
        try:
            services.queue_member_add(queue=queue, user=user, actor=actor_for(request.user))
        except DomainError as exc:
            member_form.add_error(None, str(exc))
        else:
            messages.success(request, f"{user.get_username()} joined {queue.name}.")
            return redirect("queue-manage-edit", queue_id=queue.pk)
    return _queue_page(request, queue, QueueForm(queue=queue), member_form)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_POST
def queue_member_remove(request: HttpRequest, queue_id: int, user_id: int) -> HttpResponse:
    queue = get_or_404(selectors.queue_manage_get, queue_id=queue_id)
    user = get_or_404(get_user_model().objects.get, pk=user_id)
    try:
        services.queue_member_remove(queue=queue, user=user, actor=actor_for(request.user))
    except DomainError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{user.get_username()} left {queue.name}; cases assigned to them stay assigned.")
    return redirect("queue-manage-edit", queue_id=queue.pk)

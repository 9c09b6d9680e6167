"""Learning from triage: "Classify" on an unclassified case, and reclassifying the open cases a saved rule matches.

Finance operations (on the cases of their queues) and managers open Classify: Closeloop proposes a rule generalised
from the case, and Preview shows what it would classify. Whoever works the case may record the rule as a proposal;
saving it needs `console.edit_rules` (managers), as every rule does. Saving (here or in the rule editor) then offers to
move the open unclassified cases the rule matches, also a manager's decision.
"""

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.db.models import Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES, VIEW_CASES
from console.lib.errors import DomainError, NotPermitted
from console.lib.views import get_or_404, posted
from exceptions import selectors, services
from exceptions.choices import UNCLASSIFIED
from exceptions.forms import CaseClassifyForm
from exceptions.models import Case, Category, ClassificationRule
from exceptions.permissions import can_act_on_case
from exceptions.selectors import NEW_RULE_ID
from exceptions.services.learning import PROPOSED_FIELDS

# A learned rule goes after every rule there is: it then only classifies what no rule classified before.
POSITION_STEP = 10


def may_classify(user: Any, case: Case) -> bool:
    """Whoever works the case may propose a rule from it; managers may also save one."""
    return user.has_perm(EDIT_RULES) or can_act_on_case(user, case)


def _initial(case: Case, proposal: Any | None) -> dict[str, Any] | None:
    draft = selectors.case_rule_draft(case=case)
    if draft is None:
        return None
    last = ClassificationRule.objects.aggregate(m=Max("position"))["m"] or 0
    initial: dict[str, Any] = {
        "position": last + POSITION_STEP,
        "name": draft.name,
        "system": draft.system,
        "error_code": draft.error_code,
        "error_type": draft.error_type,
        "message_pattern": draft.message_pattern,
        "attributes": {},
        "is_active": True,
    }
    if proposal is not None:
        # A manager reviewing a proposal starts from what was proposed.
        data = proposal.data
        initial.update({k: data.get(k, "") for k in PROPOSED_FIELDS if k in data})
        initial["category"] = Category.objects.filter(slug=data.get("category")).first()
        initial["note"] = data.get("note", "")
    return initial


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def case_classify(request: HttpRequest, case_id: int) -> HttpResponse:
    case = get_or_404(selectors.case_get, case_id=case_id)
    if not may_classify(request.user, case):
        raise PermissionDenied("you may only classify cases in the queues you belong to")
    if case.merged_into_id:
        return redirect("case-classify", case_id=selectors.case_live_id(case_id=case.pk))
    if case.category.slug != UNCLASSIFIED:
        messages.info(request, f"Case #{case.pk} is classified already ({case.category.name}).")
        return redirect("case-detail", case_id=case.pk)
    proposals = selectors.case_rule_proposals(case=case)
    initial = _initial(case, proposals[0] if proposals else None)
    if initial is None:
        messages.error(request, "This case records a signal, not a failed record: there is no failure to learn from.")
        return redirect("case-detail", case_id=case.pk)
    can_save = request.user.has_perm(EDIT_RULES)
    form = CaseClassifyForm(posted(request), initial=initial, case=case)
    action = request.POST.get("action", "preview")
    status, preview = 200, None
    if request.method == "POST":
        if action == "save" and not can_save:
            raise PermissionDenied("saving a classification rule needs the manager capability; propose it instead")
        if form.is_valid():
            done, status = _act(request, case, form, action)
            if done is not None:
                return done
        status = status if status != 200 else (400 if form.errors else 200)
        if form.is_valid():
            preview = selectors.classification_rule_preview(
                spec=form.spec(NEW_RULE_ID), position=form.cleaned_data["position"], now=timezone.now()
            )
    context = {
        "case": case,
        "form": form,
        "preview": preview,
        "can_save": can_save,
        "proposals": proposals,
        "latest": selectors.case_latest_failure(case=case),
    }
    return render(request, "exceptions/case_classify.html", context, status=status)


def _act(request: HttpRequest, case: Case, form: CaseClassifyForm, action: str) -> tuple[HttpResponse | None, int]:
    """Save or propose; no response shows the page again (a preview, or the form with the service's refusal and its
    status: 409 when the case changed since the page was loaded)."""
    data = form.cleaned_data
    try:
        if action == "save":
            rule = services.classification_rule_create(actor=actor_for(request.user), **form.service_kwargs())
            messages.success(request, f"Classification rule {rule} created.")
            return redirect("classification-rule-reclassify", rule_id=rule.pk), 302
        if action == "propose":
            services.case_rule_propose(
                case_id=case.pk,
                actor=request.user,
                expected_version=data["version"],
                category=data["category"],
                rule={k: data.get(k) or "" for k in PROPOSED_FIELDS},
                note=data["note"],
            )
            messages.success(request, f"Rule proposed on case #{case.pk}; a manager reviews and saves it.")
            return redirect("case-detail", case_id=case.pk), 302
    except NotPermitted as exc:
        raise PermissionDenied(str(exc)) from exc
    except DomainError as exc:
        form.add_error(None, str(exc))
        return None, exc.status_code
    return None, 200


def _posted_versions(request: HttpRequest) -> dict[int, int]:
    # Each listed case posts "<id>:<version>"; only the ticked ones (`selected`) move.
    known: dict[int, int] = {}
    for value in request.POST.getlist("case"):
        case_id, _, version = str(value).partition(":")
        if case_id.isdigit() and version.isdigit():
            known[int(case_id)] = int(version)
    selected = {int(v) for v in request.POST.getlist("selected") if str(v).isdigit()}
    return {case_id: version for case_id, version in known.items() if case_id in selected}


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def classification_rule_reclassify(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.classification_rule_get, rule_id=rule_id)
    if request.method == "POST":
        versions = _posted_versions(request)
        if not versions:
            messages.error(request, "Select at least one case to reclassify.")
            return redirect("classification-rule-reclassify", rule_id=rule.pk)
        moved, stale = services.cases_reclassify(rule=rule, actor=request.user, versions=versions)
        text = f"Reclassified {len(moved)} open case{'s' if len(moved) != 1 else ''} as {rule.category.name}."
        if stale:
            text += f" {len(stale)} changed meanwhile and stayed as they were: {', '.join(f'#{i}' for i in stale)}."
        messages.success(request, text)
        return redirect("classification-rule-list")
    rows = selectors.unclassified_cases_matching(rule=rule)
    return render(request, "exceptions/rule_reclassify.html", {"rule": rule, "rows": rows})

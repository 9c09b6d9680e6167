"""SLA definitions: list (with live, at-risk and breached clocks), create, edit and (de)activate.

Reading needs console.view_cases; every change needs console.edit_rules and goes through the audited services.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES, VIEW_CASES
from console.lib.errors import DomainError
from console.lib.views import get_or_404, posted
from slas import selectors
from slas.forms import SlaDefinitionForm
from slas.services import definitions


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def definition_list(request: HttpRequest) -> HttpResponse:
    context = {"definitions": selectors.sla_definition_list(), "can_edit": request.user.has_perm(EDIT_RULES)}
    return render(request, "slas/definition_list.html", context)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def definition_create(request: HttpRequest) -> HttpResponse:
    form = SlaDefinitionForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            definition = definitions.sla_definition_create(actor=actor_for(request.user), **form.service_kwargs())
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"SLA {definition.name} created.")
            return redirect("sla-definition-list")
    return render(request, "slas/definition_form.html", {"form": form, "definition": None})


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def definition_edit(request: HttpRequest, definition_id: int) -> HttpResponse:
    definition = get_or_404(selectors.sla_definition_get, definition_id=definition_id)
    form = SlaDefinitionForm(posted(request), instance=definition)
    if request.method == "POST" and form.is_valid():
        try:
            definition = definitions.sla_definition_update(
                definition=definition,
                actor=actor_for(request.user),
                expected_version=form.cleaned_data.get("version"),
                **form.service_kwargs(),
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"SLA {definition.name} saved.")
            return redirect("sla-definition-list")
    # A failed save left the form's instance changed in memory: show the stored definition's name.
    stored = selectors.sla_definition_get(definition_id=definition_id)
    return render(request, "slas/definition_form.html", {"form": form, "definition": stored})


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_POST
def definition_set_active(request: HttpRequest, definition_id: int) -> HttpResponse:
    definition = get_or_404(selectors.sla_definition_get, definition_id=definition_id)
    is_active = request.POST.get("is_active") == "1"
    version = request.POST.get("version", "")
    try:
        definition = definitions.sla_definition_set_active(
            definition=definition,
            actor=actor_for(request.user),
            is_active=is_active,
            expected_version=int(version) if version.isdigit() else None,
        )
    except DomainError as exc:
        messages.error(request, f"{definition.name}: {exc}")
    else:
        messages.success(request, f"SLA {definition.name} {'activated' if is_active else 'deactivated'}.")
    return redirect("sla-definition-list")

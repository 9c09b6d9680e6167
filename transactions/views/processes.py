"""Console pages of process definitions, for managers: the processes Closeloop recognises, the business-key types that
link their events, and the steps each expects (with the time allowed before a transaction counts as stalled).

Plain function views; the audited writes are process_definition_create and process_definition_update in
transactions/services/processes.py. Changes apply to events correlated from then on: existing transactions are not
re-evaluated.
"""

from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES
from console.lib.views import posted
from transactions import selectors, services
from transactions.durations import duration_label
from transactions.forms import BaseProcessStepFormSet, ProcessForm, process_step_formset
from transactions.models import ProcessDefinition
from transactions.views import form_write


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
def process_list(request: HttpRequest) -> HttpResponse:
    processes = [
        (process, [(step, duration_label(step.allowance)) for step in process.steps.all()])
        for process in selectors.process_definition_list()
    ]
    return render(request, "transactions/process_list.html", {"processes": processes})


def _process_page(
    request: HttpRequest, form: ProcessForm, steps: BaseProcessStepFormSet, process: ProcessDefinition | None
) -> HttpResponse:
    return render(request, "transactions/process_form.html", {"form": form, "steps": steps, "process": process})


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def process_create(request: HttpRequest) -> HttpResponse:
    form, steps = ProcessForm(posted(request)), process_step_formset(posted(request), None)
    created = form_write(
        request,
        form,
        lambda: services.process_definition_create(
            actor=actor_for(request.user),
            slug=form.cleaned_data["slug"],
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            correlation_keys=form.cleaned_data["correlation_keys"],
            is_active=form.cleaned_data["is_active"],
            steps=steps.steps(),
        ),
        message=lambda process: f"Process {process.name} created. It applies to events correlated from now on.",
        also_valid=steps.is_valid(),
    )
    if created is not None:
        return redirect("process-list")
    return _process_page(request, form, steps, None)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def process_edit(request: HttpRequest, process_id: int) -> HttpResponse:
    try:
        process = selectors.process_definition_get(process_id=process_id)
    except ObjectDoesNotExist as exc:
        raise Http404("no such process") from exc
    form, steps = ProcessForm(posted(request), process=process), process_step_formset(posted(request), process)
    saved = form_write(
        request,
        form,
        lambda: services.process_definition_update(
            process=process,
            actor=actor_for(request.user),
            name=form.cleaned_data["name"],
            description=form.cleaned_data["description"],
            correlation_keys=form.cleaned_data["correlation_keys"],
            is_active=form.cleaned_data["is_active"],
            steps=steps.steps(),
        ),
        message=lambda process: f"Process {process.name} saved. It applies to events correlated from now on.",
        also_valid=steps.is_valid(),
    )
    if saved is not None:
        return redirect("process-list")
    return _process_page(request, form, steps, process)

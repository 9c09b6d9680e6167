"""Console pages of process definitions, for managers: the processes Closeloop recognises, the business-key types that
link their events, and the steps each expects (with the time allowed before a transaction counts as stalled).

Plain function views in the house style of transactions/views.py; the audited writes are process_definition_create
and process_definition_update in transactions/services.py. Changes apply to events correlated from then on: existing
transactions are not re-evaluated. Included from transactions/console_urls.py through `urlpatterns` below.
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import ObjectDoesNotExist
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.views.decorators.http import require_http_methods

from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES
from console.lib.errors import DomainError
from console.lib.forms import BootstrapFormMixin
from console.lib.navigation import register_nav_item
from console.lib.views import posted
from transactions import selectors, services
from transactions.choices import BROAD_KEY_TYPES
from transactions.models import ProcessDefinition

EXTRA_STEP_ROWS = 2


# ---- Forms ----------------------------------------------------------------------------------------------------------


class ProcessForm(BootstrapFormMixin, forms.Form):
    slug = forms.SlugField(max_length=60, help_text="lower-case, e.g. order-to-cash; cannot change later")
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    correlation_keys = forms.CharField(
        max_length=500,
        required=False,
        label="Correlating key types",
        help_text="comma-separated business-key types that link this process's events, e.g. order, invoice, payment; "
        f"never broad ones ({', '.join(sorted(BROAD_KEY_TYPES))})",
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active")

    def __init__(self, *args: Any, process: ProcessDefinition | None = None, **kwargs: Any) -> None:
        if process is not None:
            kwargs.setdefault(
                "initial",
                {
                    "slug": process.slug,
                    "name": process.name,
                    "description": process.description,
                    "correlation_keys": ", ".join(process.correlation_keys or []),
                    "is_active": process.is_active,
                },
            )
        super().__init__(*args, **kwargs)
        self.process = process
        if process is not None:
            # Saved views, filters and audit entries name a process by its slug.
            self.fields["slug"].disabled = True
            self.fields["slug"].help_text = "cannot change: filters and links name the process by it"

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if self.process is None and ProcessDefinition.objects.filter(slug=slug).exists():
            raise forms.ValidationError("a process with this slug exists already")
        return slug

    def clean_correlation_keys(self) -> list[str]:
        keys = [k.strip().lower() for k in self.cleaned_data["correlation_keys"].split(",") if k.strip()]
        problem = services.correlation_key_problem(keys)
        if problem:
            raise forms.ValidationError(problem)
        return keys


class ProcessStepForm(BootstrapFormMixin, forms.Form):
    position = forms.IntegerField(min_value=1, max_value=32767, widget=forms.NumberInput(attrs={"style": "width:5rem"}))
    name = forms.CharField(max_length=120)
    system = forms.CharField(max_length=100, required=False, help_text="empty: any system")
    kind_pattern = forms.CharField(max_length=200, label="Kind pattern", help_text="glob, a|b for alternatives")
    allowance = forms.CharField(max_length=30, help_text="after the previous step, e.g. 4h or 2d")
    required = forms.BooleanField(required=False, initial=True)

    def clean_allowance(self) -> Any:
        try:
            return services.duration_parse(self.cleaned_data["allowance"])
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from exc


class BaseProcessStepFormSet(forms.BaseFormSet):
    def clean(self) -> None:
        if any(self.errors):
            return
        # Extra rows left blank have no cleaned data (the formset skips them); rows ticked for deletion are dropped.
        kept = [f for f in self.forms if f.cleaned_data and not self._should_delete_form(f)]
        if not kept:
            raise forms.ValidationError("a process needs at least one step")
        positions = [f.cleaned_data["position"] for f in kept]
        if len(set(positions)) != len(positions):
            raise forms.ValidationError("two steps have the same position")

    def steps(self) -> list[services.ProcessStepInput]:
        return [
            services.ProcessStepInput(
                position=f.cleaned_data["position"],
                name=f.cleaned_data["name"],
                system=f.cleaned_data["system"],
                kind_pattern=f.cleaned_data["kind_pattern"],
                allowance=f.cleaned_data["allowance"],
                required=f.cleaned_data["required"],
            )
            for f in self.forms
            if f.cleaned_data and not self._should_delete_form(f)
        ]


ProcessStepFormSet = forms.formset_factory(
    ProcessStepForm, formset=BaseProcessStepFormSet, extra=EXTRA_STEP_ROWS, can_delete=True
)


def _step_formset(data: Any, process: ProcessDefinition | None) -> BaseProcessStepFormSet:
    initial = [
        {
            "position": s.position,
            "name": s.name,
            "system": s.system,
            "kind_pattern": s.kind_pattern,
            "allowance": services.duration_label(s.allowance),
            "required": s.required,
        }
        for s in (process.steps.all() if process is not None else [])
    ]
    return ProcessStepFormSet(data, initial=initial, prefix="steps")


# ---- Views ----------------------------------------------------------------------------------------------------------


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
def process_list(request: HttpRequest) -> HttpResponse:
    processes = [
        (process, [(step, services.duration_label(step.allowance)) for step in process.steps.all()])
        for process in selectors.process_definition_list()
    ]
    return render(request, "exceptions/process_list.html", {"processes": processes})


def _process_page(
    request: HttpRequest, form: ProcessForm, steps: BaseProcessStepFormSet, process: ProcessDefinition | None
) -> HttpResponse:
    return render(request, "exceptions/process_form.html", {"form": form, "steps": steps, "process": process})


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def process_create(request: HttpRequest) -> HttpResponse:
    form, steps = ProcessForm(posted(request)), _step_formset(posted(request), None)
    if request.method == "POST" and form.is_valid() and steps.is_valid():
        try:
            process = services.process_definition_create(
                actor=actor_for(request.user),
                slug=form.cleaned_data["slug"],
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                correlation_keys=form.cleaned_data["correlation_keys"],
                is_active=form.cleaned_data["is_active"],
                steps=steps.steps(),
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Process {process.name} created. It applies to events correlated from now on.")
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
    form, steps = ProcessForm(posted(request), process=process), _step_formset(posted(request), process)
    if request.method == "POST" and form.is_valid() and steps.is_valid():
        try:
            process = services.process_definition_update(
                process=process,
                actor=actor_for(request.user),
                name=form.cleaned_data["name"],
                description=form.cleaned_data["description"],
                correlation_keys=form.cleaned_data["correlation_keys"],
                is_active=form.cleaned_data["is_active"],
                steps=steps.steps(),
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Process {process.name} saved. It applies to events correlated from now on.")
            return redirect("process-list")
    return _process_page(request, form, steps, process)


urlpatterns: list[URLPattern] = [
    path("processes/", process_list, name="process-list"),
    path("processes/new/", process_create, name="process-create"),
    path("processes/<int:process_id>/", process_edit, name="process-edit"),
]


def register_process_navigation() -> None:
    """The Management section's entry for these pages; called from TransactionsConfig.ready()."""
    register_nav_item("Management", "Processes", "process-list", EDIT_RULES, 50)

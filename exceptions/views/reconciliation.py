"""Managers' reconciliation configuration pages: rules (with a preview over the last 7 days, as the classification rule
pages have), value mappings and FX rates. Reads through selectors, writes through the audited services; every page
needs `console.edit_rules`. A DomainError becomes a form error or a message, never a 500."""

from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from console.lib.audit import actor_for
from console.lib.capabilities import EDIT_RULES
from console.lib.errors import DomainError
from console.lib.views import active_write, confirmed_write, form_write, get_or_404, posted
from exceptions import selectors, services
from exceptions.forms.reconciliation import FxRateForm, ReconciliationRuleForm, ValueMappingForm
from exceptions.models import ReconciliationRule, ValueMapping
from exceptions.selectors.reconciliation_dashboard import reconciliation_match_rates_all
from transactions.services.interfaces import local_day


def _rule_rows(rules: list[ReconciliationRule]) -> list[tuple[ReconciliationRule, dict | None]]:
    # The last days' figures from the daily rollup, as /reconciliation/ reads them (not a scan of a week of results).
    today = local_day(timezone.now())
    first = today - timedelta(days=selectors.PREVIEW_DAYS - 1)
    rows = reconciliation_match_rates_all(first=first, last=today)["rule"]
    figures = {row["rule_id"]: row for row in rows}
    return [(rule, figures.get(rule.pk)) for rule in rules]


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
def reconciliation_rule_list(request: HttpRequest) -> HttpResponse:
    rules = list(selectors.reconciliation_rule_list())
    context = {"rows": _rule_rows(rules), "days": selectors.PREVIEW_DAYS}
    return render(request, "exceptions/reconciliation_rule_list.html", context)


def _rule_page(request: HttpRequest, form: ReconciliationRuleForm, rule: ReconciliationRule | None) -> HttpResponse:
    """The form; with `preview` posted and a valid form, also what the rule as typed would find (nothing saved)."""
    preview = None
    if request.method == "POST" and "preview" in request.POST and form.is_valid():
        try:
            preview = selectors.reconciliation_rule_preview(rule=form.preview_rule(rule), now=timezone.now())
        except DomainError as exc:
            form.add_error(None, str(exc))
    return render(request, "exceptions/reconciliation_rule_form.html", {"form": form, "rule": rule, "preview": preview})


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def reconciliation_rule_create(request: HttpRequest) -> HttpResponse:
    form = ReconciliationRuleForm(posted(request))
    created = form_write(
        request,
        form,
        lambda: services.reconciliation_rule_create(actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda rule: f"Reconciliation rule {rule} created.",
        ready="preview" not in request.POST,
    )
    if created is not None:
        return redirect("reconciliation-rule-list")
    return _rule_page(request, form, None)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def reconciliation_rule_edit(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.reconciliation_rule_get, rule_id=rule_id)
    form = ReconciliationRuleForm(posted(request), instance=rule)
    saved = form_write(
        request,
        form,
        lambda: services.reconciliation_rule_update(rule=rule, actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda rule: f"Reconciliation rule {rule} saved.",
        ready="preview" not in request.POST,
    )
    if saved is not None:
        return redirect("reconciliation-rule-list")
    return _rule_page(request, form, rule)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_POST
def reconciliation_rule_activate(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.reconciliation_rule_get, rule_id=rule_id)
    return active_write(
        request,
        lambda active: services.reconciliation_rule_set_active(
            rule=rule, is_active=active, actor=actor_for(request.user)
        ),
        noun="Reconciliation rule",
        back=reverse("reconciliation-rule-list"),
    )


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def reconciliation_rule_delete(request: HttpRequest, rule_id: int) -> HttpResponse:
    rule = get_or_404(selectors.reconciliation_rule_get, rule_id=rule_id)
    return confirmed_write(
        request,
        title="Delete reconciliation rule",
        message=f"Rule #{rule.pk} ({rule}) will no longer check transactions, and its results are deleted with it. "
        "The cases its mismatches opened stay.",
        button="Delete rule",
        back=reverse("reconciliation-rule-list"),
        write=lambda: services.reconciliation_rule_delete(rule=rule, actor=actor_for(request.user)),
        done=f"Reconciliation rule {rule} deleted.",
    )


# ---- Value mappings and FX rates ------------------------------------------------------------------------------------


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def reconciliation_reference(request: HttpRequest) -> HttpResponse:
    """The mappings, and the FX rate table with its add form (POST adds a rate)."""
    form = FxRateForm(posted(request))
    created = form_write(
        request,
        form,
        lambda: services.fx_rate_create(actor=actor_for(request.user), **form.cleaned_data),
        message=lambda rate: f"FX rate {rate} added.",
    )
    if created is not None:
        return redirect("reconciliation-reference")
    context = {"mappings": selectors.value_mapping_list(), "rates": selectors.fx_rate_list(), "form": form}
    return render(request, "exceptions/reconciliation_reference.html", context)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def fx_rate_delete(request: HttpRequest, rate_id: int) -> HttpResponse:
    rate = get_or_404(selectors.fx_rate_get, rate_id=rate_id)
    return confirmed_write(
        request,
        title="Delete FX rate",
        message=f"{rate} will no longer convert amounts; a currency-aware comparison that needs it answers “error” "
        "until another rate is configured.",
        button="Delete rate",
        back=reverse("reconciliation-reference"),
        write=lambda: services.fx_rate_delete(rate=rate, actor=actor_for(request.user)),
        done=f"FX rate {rate} deleted.",
    )


def _mapping_page(request: HttpRequest, form: ValueMappingForm, mapping: ValueMapping | None) -> HttpResponse:
    return render(request, "exceptions/reconciliation_mapping_form.html", {"form": form, "mapping": mapping})


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def value_mapping_create(request: HttpRequest) -> HttpResponse:
    form = ValueMappingForm(posted(request))
    created = form_write(
        request,
        form,
        lambda: services.value_mapping_create(actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda mapping: f"Mapping {mapping} created.",
    )
    if created is not None:
        return redirect("reconciliation-reference")
    return _mapping_page(request, form, None)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def value_mapping_edit(request: HttpRequest, mapping_id: int) -> HttpResponse:
    mapping = get_or_404(selectors.value_mapping_get, mapping_id=mapping_id)
    form = ValueMappingForm(posted(request), mapping=mapping)
    saved = form_write(
        request,
        form,
        lambda: services.value_mapping_update(mapping=mapping, actor=actor_for(request.user), **form.service_kwargs()),
        message=lambda mapping: f"Mapping {mapping} saved.",
    )
    if saved is not None:
        return redirect("reconciliation-reference")
    return _mapping_page(request, form, mapping)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def value_mapping_delete(request: HttpRequest, mapping_id: int) -> HttpResponse:
    mapping = get_or_404(selectors.value_mapping_get, mapping_id=mapping_id)
    if request.method == "POST" and mapping.rules.exists():
        messages.error(request, "Rules translate through this mapping; change them first.")
        return redirect("reconciliation-reference")
    return confirmed_write(
        request,
        title="Delete mapping",
        message=f"The mapping {mapping} and its {len(mapping.entries)} entries will be deleted.",
        button="Delete mapping",
        back=reverse("reconciliation-reference"),
        write=lambda: services.value_mapping_delete(mapping=mapping, actor=actor_for(request.user)),
        done=f"Mapping {mapping} deleted.",
    )

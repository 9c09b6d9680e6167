"""Business calendars: list, create, edit working hours, holidays (list, CSV import, delete).

Reading needs console.view_cases; every change needs console.edit_rules and goes through the audited services.
"""

from datetime import date

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
from slas.forms import BusinessCalendarForm, HolidayImportForm
from slas.services import calendars


@login_required
@permission_required(VIEW_CASES, raise_exception=True)
def calendar_list(request: HttpRequest) -> HttpResponse:
    context = {"calendars": selectors.calendar_list(), "can_edit": request.user.has_perm(EDIT_RULES)}
    return render(request, "slas/calendar_list.html", context)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def calendar_create(request: HttpRequest) -> HttpResponse:
    form = BusinessCalendarForm(posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            calendar = calendars.calendar_create(actor=actor_for(request.user), **form.service_kwargs())
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Calendar {calendar.name} created.")
            return redirect("sla-calendar-edit", calendar_id=calendar.pk)
    return render(request, "slas/calendar_form.html", {"form": form, "calendar": None})


def _calendar_page(request: HttpRequest, calendar_id: int, **forms: object) -> HttpResponse:
    calendar = selectors.calendar_get(calendar_id=calendar_id)
    context = {
        "calendar": calendar,
        "form": forms.get("form") or BusinessCalendarForm(instance=calendar),
        "import_form": forms.get("import_form") or HolidayImportForm(),
        "holidays": selectors.holiday_list(calendar=calendar, since=date(date.today().year - 1, 1, 1)),
    }
    return render(request, "slas/calendar_form.html", context)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_http_methods(["GET", "POST"])
def calendar_edit(request: HttpRequest, calendar_id: int) -> HttpResponse:
    calendar = get_or_404(selectors.calendar_get, calendar_id=calendar_id)
    form = BusinessCalendarForm(posted(request), instance=calendar)
    if request.method == "POST" and form.is_valid():
        try:
            calendar = calendars.calendar_update(
                calendar=calendar,
                actor=actor_for(request.user),
                expected_version=form.cleaned_data.get("version"),
                **form.service_kwargs(),
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Calendar {calendar.name} saved.")
            return redirect("sla-calendar-edit", calendar_id=calendar.pk)
    return _calendar_page(request, calendar_id, form=form if request.method == "POST" else None)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_POST
def holiday_import(request: HttpRequest, calendar_id: int) -> HttpResponse:
    calendar = get_or_404(selectors.calendar_get, calendar_id=calendar_id)
    form = HolidayImportForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            result = calendars.holidays_import(
                calendar=calendar, rows=form.cleaned_data["file"], actor=actor_for(request.user)
            )
        except DomainError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                f"Holidays imported: {result['created']} added, {result['renamed']} renamed, "
                f"{result['unchanged']} already there.",
            )
            return redirect("sla-calendar-edit", calendar_id=calendar.pk)
    return _calendar_page(request, calendar_id, import_form=form)


@login_required
@permission_required(EDIT_RULES, raise_exception=True)
@require_POST
def holiday_delete(request: HttpRequest, calendar_id: int, holiday_id: int) -> HttpResponse:
    calendar = get_or_404(selectors.calendar_get, calendar_id=calendar_id)
    holiday = get_or_404(selectors.holiday_list(calendar=calendar).get, pk=holiday_id)
    calendars.holiday_delete(holiday=holiday, actor=actor_for(request.user))
    messages.success(request, f"Holiday {holiday.date} removed.")
    return redirect("sla-calendar-edit", calendar_id=calendar.pk)

"""Forms of the SLA pages: they validate and shape input; the services in slas/services/ decide and write."""

import contextlib
import csv
import io
from datetime import date, timedelta
from typing import Any

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from console.lib.errors import DomainError
from console.lib.forms import BootstrapFormMixin
from exceptions.selectors import category_list
from slas.calendars import WEEKDAY_KEYS, CalendarError, format_working_hours, parse_working_hours
from slas.models import BusinessCalendar, EvidenceMonitor, SlaDefinition, VolumeMonitor
from slas.services.definitions import EDITABLE_FIELDS
from slas.services.monitors import EVIDENCE_FIELDS, VOLUME_FIELDS, evidence_monitor_problems, volume_monitor_problems
from transactions.durations import duration_label, duration_parse

MAX_HOLIDAY_LINES = 2000
STATUS_CHOICES = [("", "any"), ("ok", "ok"), ("error", "error")]


class DurationTextField(forms.CharField):
    """A business-time duration typed as 4h, 90m or 20h (a day here is 24 hours: use hours for working days)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 30)
        kwargs.setdefault("help_text", "business time, e.g. 4h, 90m or 20h (two 10-hour working days)")
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return duration_label(value) if isinstance(value, timedelta) else value

    def clean(self, value: Any) -> timedelta | None:  # type: ignore[override]
        text = super().clean(value)
        if not text:
            return None
        try:
            return duration_parse(text)
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from exc


class SlaDefinitionForm(BootstrapFormMixin, forms.ModelForm):
    """Every editable field of a definition; the model's checks (start and stop matching one event, pause
    conditions, the category) land on the field at fault."""

    target = DurationTextField()
    start_status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    stop_status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    breach_category_slug = forms.ChoiceField(label="Breach category")
    pause_conditions = forms.JSONField(
        required=False,
        initial=list,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text='JSON list, e.g. [{"case_category": "data_quality"}] or '
        '[{"event_kind": "vendor.query_sent", "until_kind": "vendor.query_answered"}]',
    )
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = SlaDefinition
        fields = [name for name in EDITABLE_FIELDS if name != "is_active"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["breach_category_slug"].choices = [(c.slug, c.name) for c in category_list()]
        self.fields["breach_queue"].empty_label = "Routed by the routing rules"
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version

    def clean_pause_conditions(self) -> list:
        return self.cleaned_data.get("pause_conditions") or []

    def service_kwargs(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


def _intervals_text(intervals: list[list[str]]) -> str:
    return ", ".join(f"{start}-{end}" for start, end in intervals)


class BusinessCalendarForm(BootstrapFormMixin, forms.ModelForm):
    """Working hours as one line per weekday ("08:00-12:00, 13:00-17:00"; empty: not a working day)."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    mon, tue, wed, thu, fri, sat, sun = (
        forms.CharField(
            label=key.title(),
            required=False,
            max_length=200,
            widget=forms.TextInput(attrs={"placeholder": "not working"}),
        )
        for key in WEEKDAY_KEYS
    )

    class Meta:
        model = BusinessCalendar
        fields = ["slug", "name", "time_zone", "description"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        hours = self.instance.working_hours or {}
        for key in WEEKDAY_KEYS:
            self.fields[key].initial = _intervals_text(hours.get(key, []))
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        hours: dict[str, list[list[str]]] = {}
        for key in WEEKDAY_KEYS:
            text = (data.get(key) or "").strip()
            if not text:
                continue
            pairs = []
            for part in text.split(","):
                start, sep, end = part.strip().partition("-")
                if not sep:
                    self.add_error(key, f"{part.strip()!r} is not an interval like 08:00-12:00")
                    break
                pairs.append([start.strip(), end.strip()])
            hours[key] = pairs
        # Sorted, in the stored form; a calendar that does not parse is reported by the model's own check, once.
        with contextlib.suppress(CalendarError):
            hours = format_working_hours(parse_working_hours(hours))
        self.instance.working_hours = hours
        data["working_hours"] = hours
        return data

    def _update_errors(self, errors: ValidationError) -> None:
        # The model validates working_hours, which this form shows as one field per weekday: put each problem on
        # the weekday it names, or on the form as a whole.
        if hasattr(errors, "error_dict") and "working_hours" in errors.error_dict:
            for error in errors.error_dict.pop("working_hours"):
                for message in error.messages:
                    day = message.split(":", 1)[0]
                    errors.error_dict.setdefault(day if day in WEEKDAY_KEYS else NON_FIELD_ERRORS, []).append(
                        ValidationError(message)
                    )
        super()._update_errors(errors)

    def service_kwargs(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in (*self.Meta.fields, "working_hours")}


class HolidayImportForm(BootstrapFormMixin, forms.Form):
    """A CSV of holidays, one per line: date (YYYY-MM-DD), name. A header line is allowed. Every line is checked
    before anything is saved: one bad line refuses the whole file, naming each line at fault."""

    file = forms.FileField(help_text="CSV: date,name (e.g. 2026-12-24,Christmas Eve); at most 2,000 lines")

    def clean_file(self) -> list[tuple[date, str]]:
        upload = self.cleaned_data["file"]
        try:
            text = upload.read(1_000_000).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError("the file is not UTF-8 text") from exc
        rows: list[tuple[date, str]] = []
        problems: list[str] = []
        seen: dict[date, int] = {}
        lines = list(csv.reader(io.StringIO(text)))
        if len(lines) > MAX_HOLIDAY_LINES + 1:
            raise forms.ValidationError(f"at most {MAX_HOLIDAY_LINES} lines per file")
        for number, cells in enumerate(lines, start=1):
            if not cells or not "".join(cells).strip():
                continue
            first = cells[0].strip()
            if number == 1 and first.lower() == "date":
                continue
            try:
                day = date.fromisoformat(first)
            except ValueError:
                problems.append(f"line {number}: {first!r} is not a date (YYYY-MM-DD)")
                continue
            if day in seen:
                problems.append(f"line {number}: {day} is already on line {seen[day]}")
                continue
            seen[day] = number
            name = cells[1].strip() if len(cells) > 1 else ""
            if len(name) > 120:
                problems.append(f"line {number}: the name is longer than 120 characters")
                continue
            rows.append((day, name))
        if problems:
            raise forms.ValidationError(problems)
        if not rows:
            raise forms.ValidationError("the file holds no holiday")
        return rows


# ---- Monitors ------------------------------------------------------------------------------------------------------


class _MonitorForm(BootstrapFormMixin, forms.ModelForm):
    category_slug = forms.ChoiceField(label="Case category")
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    problems = staticmethod(lambda monitor: {})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category_slug"].choices = [(c.slug, c.name) for c in category_list()]
        if self.instance.pk:
            self.fields["version"].initial = self.instance.version

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        model = self._meta.model
        candidate = model(**{f.attname: getattr(self.instance, f.attname) for f in model._meta.concrete_fields})
        for name in self._meta.fields:
            if name in data:
                setattr(candidate, name, data[name])
        # An error on a field also keeps the model's generic constraint message about it off the page.
        for name, message in type(self).problems(candidate).items():
            self.add_error(name if name in self.fields else None, message)
        return data

    def service_kwargs(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self._meta.fields}


class VolumeMonitorForm(_MonitorForm):
    """A volume monitor: which events, how many per window (or by a daily deadline), on which calendar."""

    window = DurationTextField(required=False, help_text="window mode: e.g. 30m, 2h (working time, see below)")
    problems = staticmethod(volume_monitor_problems)

    class Meta:
        model = VolumeMonitor
        fields = [name for name in VOLUME_FIELDS if name != "is_active"] + ["is_active"]
        widgets = {"deadline_time": forms.TimeInput(attrs={"type": "time"})}


class EvidenceMonitorForm(_MonitorForm):
    """A control-evidence monitor: a trigger, the evidence that must come before or after it, within business time."""

    window = DurationTextField(help_text="business time, e.g. 24h or 40h (four 10-hour working days)")
    trigger_status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    problems = staticmethod(evidence_monitor_problems)

    class Meta:
        model = EvidenceMonitor
        fields = [name for name in EVIDENCE_FIELDS if name != "is_active"] + ["is_active"]

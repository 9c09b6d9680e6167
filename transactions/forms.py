"""Forms of the transactions app's console pages (ingest, dead letters, processes); writes go through services, forms
only read and check the input."""

import csv
import io
import json
from datetime import timedelta
from typing import Any

from django import forms

from console.lib.errors import DomainError
from console.lib.forms import BootstrapFormMixin
from transactions.canonical import PathError, kind_matches, normalise_key, parse_path, resolve_path
from transactions.choices import BROAD_KEY_TYPES, Channel, Criticality, DeadLetterStatus, InterfaceStyle, RuleAction
from transactions.durations import duration_parse
from transactions.models import ExtractionRule, IngestSource, ProcessDefinition, RedactionRule
from transactions.services import (
    CatalogueInput,
    ProcessStepInput,
    correlation_key_problem,
    extraction_rule_problems,
    process_step_rows,
)

MAX_SAMPLE_CHARS = 256 * 1024
EXTRA_STEP_ROWS = 2


def _json_object(text: str, *, not_an_object: str) -> dict[str, Any]:
    """A record typed into a text area: a JSON object, without the NaN/Infinity that Python's parser lets through."""

    def reject(name: str) -> None:
        raise ValueError(f"{name} is not a JSON value")

    try:
        document = json.loads(text, parse_constant=reject)
    except (ValueError, RecursionError) as exc:
        raise forms.ValidationError(f"not valid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise forms.ValidationError(not_an_object)
    return document


# ---- Sources, tokens, aliases ---------------------------------------------------------------------------------------


class IngestSourceForm(BootstrapFormMixin, forms.Form):
    name = forms.SlugField(max_length=100, help_text="letters, digits, - and _, e.g. sap-event-mesh")
    description = forms.CharField(max_length=300, required=False)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if IngestSource.objects.filter(name=name).exists():
            raise forms.ValidationError("an ingest source with this name exists already")
        return name


class IngestTokenForm(BootstrapFormMixin, forms.Form):
    label = forms.CharField(max_length=100, required=False, help_text="where the token is used, e.g. prod gateway")


class SourceAliasForm(BootstrapFormMixin, forms.Form):
    pattern = forms.CharField(
        max_length=300, help_text="a CloudEvents source, exact (/sap/s4/prod) or a prefix ending in * (/sap/s4/*)"
    )
    system = forms.CharField(max_length=100, help_text="the system name events get, e.g. sap-s4")

    def clean_pattern(self) -> str:
        pattern = self.cleaned_data["pattern"].strip()
        if "*" in pattern[:-1]:
            raise forms.ValidationError("only one *, at the end (a prefix pattern)")
        return pattern


# ---- Extraction and redaction rules ---------------------------------------------------------------------------------


class _SourceRuleForm(BootstrapFormMixin, forms.ModelForm):
    """A rule for one ingest source or (left empty) for every source; its fields are the service's keywords."""

    source = forms.ModelChoiceField(
        queryset=IngestSource.objects.order_by("name"), required=False, empty_label="Every source"
    )

    def service_kwargs(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self._meta.fields}


class ExtractionRuleForm(_SourceRuleForm):
    class Meta:
        model = ExtractionRule
        fields = ["position", "source", "kind_pattern", "action", "path", "key_type", "description", "is_active"]
        labels = {"kind_pattern": "Kind pattern", "key_type": "Key type", "is_active": "Active"}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["path"] = (data.get("path") or "").strip()
        data["key_type"] = (data.get("key_type") or "").strip()
        data["kind_pattern"] = (data.get("kind_pattern") or "").strip() or "*"
        if "action" in data:
            problems = extraction_rule_problems(action=data["action"], path=data["path"], key_type=data["key_type"])
            for name, text in problems.items():
                self.add_error(name, text)
        return data


class ExtractionRuleTestForm(BootstrapFormMixin, forms.Form):
    """A rule as typed on the edit page (saved or not) and a sample record to try it on."""

    kind_pattern = forms.CharField(max_length=200, required=False)
    action = forms.ChoiceField(choices=RuleAction.choices)
    path = forms.CharField(max_length=300, required=False)
    key_type = forms.CharField(max_length=40, required=False)
    sample = forms.CharField(
        max_length=MAX_SAMPLE_CHARS,
        widget=forms.Textarea(attrs={"rows": 8, "class": "font-monospace"}),
        help_text="a record as your system sends it (a canonical event or a CloudEvent)",
    )

    def clean_sample(self) -> dict[str, Any]:
        return _json_object(self.cleaned_data["sample"], not_an_object="a record is a JSON object")

    def clean_path(self) -> str:
        path = self.cleaned_data["path"].strip()
        if path:
            try:
                parse_path(path)
            except PathError as exc:
                raise forms.ValidationError(str(exc)) from exc
        return path

    def result(self) -> dict[str, Any]:
        """What ingest would do with the sample: same matching, path resolution and key normalisation."""
        document = self.cleaned_data["sample"]
        pattern = self.cleaned_data["kind_pattern"].strip() or "*"
        kind = document.get("kind") if isinstance(document.get("kind"), str) else document.get("type")
        kind = kind if isinstance(kind, str) else ""
        outcome: dict[str, Any] = {"kind": kind, "pattern": pattern, "kind_matches": kind_matches(pattern, kind)}
        if self.cleaned_data["action"] == RuleAction.MARK_FAILED:
            outcome["marks_failed"] = outcome["kind_matches"]
            return outcome
        path, key_type = self.cleaned_data["path"], self.cleaned_data["key_type"].strip()
        if not path or not key_type:
            outcome["problem"] = "a business-key rule needs a path and a key type"
            return outcome
        value = resolve_path(document, parse_path(path))
        outcome["found"] = value
        usable = isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip() != ""
        outcome["keys"] = {key_type: normalise_key(key_type, str(value))} if usable else {}
        if value is not None and not usable:
            outcome["problem"] = "the path leads to a value that is not a string or number, so no key is taken"
        return outcome


class RedactionRuleForm(_SourceRuleForm):
    class Meta:
        model = RedactionRule
        fields = ["source", "pattern", "action", "is_active"]
        labels = {"is_active": "Active"}

    def clean_pattern(self) -> str:
        pattern = self.cleaned_data["pattern"].strip()
        if not pattern:
            raise forms.ValidationError("the pattern is empty")
        return pattern


# ---- Dead letters ---------------------------------------------------------------------------------------------------


class DeadLetterFilterForm(BootstrapFormMixin, forms.Form):
    status = forms.ChoiceField(choices=[("", "Any status"), *DeadLetterStatus.choices], required=False)
    source = forms.ModelChoiceField(
        queryset=IngestSource.objects.order_by("name"), required=False, empty_label="Any source"
    )
    channel = forms.ChoiceField(choices=[("", "Any channel"), *Channel.choices], required=False)
    reason = forms.CharField(max_length=200, required=False, label="Reason contains")

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        if data is not None and "status" not in data:
            # Pending letters are the work; the other states are history a user asks for.
            data = data.copy()
            data["status"] = DeadLetterStatus.PENDING
        super().__init__(data, *args, **kwargs)


class DeadLetterActionForm(forms.Form):
    """Replay and discard carry the version the user saw, so that a change by someone else is not overwritten."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)


class DeadLetterRepairForm(BootstrapFormMixin, DeadLetterActionForm):
    raw = forms.CharField(
        label="Repaired record (JSON)",
        max_length=MAX_SAMPLE_CHARS,
        widget=forms.Textarea(attrs={"rows": 14, "class": "font-monospace", "spellcheck": "false"}),
        strip=False,
    )

    def clean_raw(self) -> dict[str, Any]:
        return _json_object(
            self.cleaned_data["raw"], not_an_object="a record is a JSON object ({...}), not a list or a single value"
        )


# ---- Process definitions --------------------------------------------------------------------------------------------


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
        problem = correlation_key_problem(keys)
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
    requires_approval = forms.BooleanField(required=False, label="Needs approval")
    approval_step = forms.CharField(max_length=120, required=False, label="Approval step", help_text="e.g. deal-desk")
    allowed_approvers = forms.CharField(
        max_length=500, required=False, label="Allowed approvers", help_text="roles or user names, comma-separated"
    )
    approval_opens_case = forms.BooleanField(required=False, label="Finding opens a case")

    def clean_allowed_approvers(self) -> tuple[str, ...]:
        return tuple(a.strip() for a in self.cleaned_data["allowed_approvers"].split(",") if a.strip())

    def clean_allowance(self) -> Any:
        try:
            return duration_parse(self.cleaned_data["allowance"])
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

    def steps(self) -> list[ProcessStepInput]:
        return [
            ProcessStepInput(
                position=f.cleaned_data["position"],
                name=f.cleaned_data["name"],
                system=f.cleaned_data["system"],
                kind_pattern=f.cleaned_data["kind_pattern"],
                allowance=f.cleaned_data["allowance"],
                required=f.cleaned_data["required"],
                requires_approval=f.cleaned_data["requires_approval"],
                approval_step=f.cleaned_data["approval_step"],
                allowed_approvers=f.cleaned_data["allowed_approvers"],
                approval_opens_case=f.cleaned_data["approval_opens_case"],
            )
            for f in self.forms
            if f.cleaned_data and not self._should_delete_form(f)
        ]


ProcessStepFormSet = forms.formset_factory(
    ProcessStepForm, formset=BaseProcessStepFormSet, extra=EXTRA_STEP_ROWS, can_delete=True
)


def process_step_formset(data: Any, process: ProcessDefinition | None) -> BaseProcessStepFormSet:
    """The step rows of the process page: the process's steps (none for a new one) and EXTRA_STEP_ROWS blank rows."""
    initial = process_step_rows(process.steps.all()) if process is not None else []
    return ProcessStepFormSet(data, initial=initial, prefix="steps")


MAP_SORTS = (
    "source",
    "target",
    "volume",
    "errors",
    "error_rate",
    "duplicates",
    "late",
    "latency_p50_ms",
    "latency_p95_ms",
)
MAX_MAP_DAYS = 366


class MapRangeForm(BootstrapFormMixin, forms.Form):
    """The integration map's range (local days, both included), colouring and table order."""

    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="From")
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}), label="To")
    colour = forms.ChoiceField(
        required=False, choices=[("errors", "Error rate"), ("latency", "p95 latency")], label="Colour by"
    )
    sort = forms.ChoiceField(required=False, choices=[(s, s) for s in MAP_SORTS], widget=forms.HiddenInput)
    desc = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        since, until = data.get("since"), data.get("until")
        if since and until and until < since:
            self.add_error("until", "The end is before the start.")
        elif since and until and (until - since).days >= MAX_MAP_DAYS:
            self.add_error("until", f"At most {MAX_MAP_DAYS} days at once.")
        return data


class CatalogueForm(BootstrapFormMixin, forms.Form):
    """The catalogue facts of one system or interface; `version` is the one the editor saw (a stale one gets 409)."""

    owner_team = forms.CharField(max_length=100, required=False)
    owner_queue = forms.SlugField(max_length=60, required=False, help_text="slug of the queue its cases go to")
    criticality = forms.ChoiceField(choices=[("", "—"), *Criticality.choices], required=False)
    style = forms.ChoiceField(choices=[("", "—"), *InterfaceStyle.choices], required=False)
    environment = forms.CharField(max_length=40, required=False)
    data_objects = forms.CharField(required=False, help_text="separated by ; e.g. order; invoice")
    notes = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    expected_every = forms.CharField(
        required=False, label="Expected every", help_text="interfaces: e.g. 1d; silent for longer raises a case"
    )
    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)

    def clean_expected_every(self) -> timedelta | None:
        text = self.cleaned_data["expected_every"].strip()
        try:
            return duration_parse(text) if text else None
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def entry(self) -> CatalogueInput:
        data = self.cleaned_data
        objects = [o.strip() for o in data["data_objects"].replace(",", ";").split(";")]
        return CatalogueInput(
            owner_team=data["owner_team"].strip(),
            owner_queue=data["owner_queue"],
            criticality=data["criticality"],
            style=data["style"],
            environment=data["environment"].strip(),
            data_objects=tuple(dict.fromkeys(o for o in objects if o)),
            notes=data["notes"].strip(),
            expected_every=data["expected_every"],
        )


MAX_CATALOGUE_CSV = 2 * 1024 * 1024


class CatalogueImportForm(BootstrapFormMixin, forms.Form):
    """A CSV inventory (the export's columns); read here, checked and applied by services.catalogue_import."""

    file = forms.FileField(label="Catalogue CSV")

    def clean_file(self) -> tuple[list[str], list[dict[str, str]]]:
        upload = self.cleaned_data["file"]
        if upload.size > MAX_CATALOGUE_CSV:
            raise forms.ValidationError(f"The file is larger than {MAX_CATALOGUE_CSV // 1024 // 1024} MiB.")
        try:
            # utf-8-sig: spreadsheets save CSV with a byte-order mark.
            text = upload.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError("The file is not UTF-8 text; save it as CSV UTF-8.") from exc
        try:
            reader = csv.DictReader(io.StringIO(text))
            rows = [{k.strip(): v for k, v in row.items() if isinstance(k, str)} for row in reader]
        except csv.Error as exc:
            raise forms.ValidationError(f"The file is not readable as CSV: {exc}") from exc
        if not reader.fieldnames:
            raise forms.ValidationError("The file is empty.")
        return list(reader.fieldnames), rows

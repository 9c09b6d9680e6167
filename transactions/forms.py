"""Forms of the console's ingest pages; writes go through services, forms only read and check the input."""

import json
from typing import Any

from django import forms

from console.lib.forms import BootstrapFormMixin
from transactions.canonical import PathError, kind_matches, normalise_key, parse_path, resolve_path
from transactions.choices import Channel, DeadLetterStatus, RuleAction
from transactions.models import ExtractionRule, IngestSource, RedactionRule
from transactions.services import extraction_rule_problems

MAX_SAMPLE_CHARS = 256 * 1024


def _loads_json(text: str) -> Any:
    def reject(name: str) -> None:
        raise ValueError(f"{name} is not a JSON value")

    return json.loads(text, parse_constant=reject)


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


class ExtractionRuleForm(BootstrapFormMixin, forms.ModelForm):
    source = forms.ModelChoiceField(
        queryset=IngestSource.objects.order_by("name"), required=False, empty_label="Every source"
    )

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

    def service_kwargs(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


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

    def clean_sample(self) -> Any:
        try:
            document = _loads_json(self.cleaned_data["sample"])
        except (ValueError, RecursionError) as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise forms.ValidationError("a record is a JSON object")
        return document

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


class RedactionRuleForm(BootstrapFormMixin, forms.ModelForm):
    source = forms.ModelChoiceField(
        queryset=IngestSource.objects.order_by("name"), required=False, empty_label="Every source"
    )

    class Meta:
        model = RedactionRule
        fields = ["source", "pattern", "action", "is_active"]
        labels = {"is_active": "Active"}

    def clean_pattern(self) -> str:
        pattern = self.cleaned_data["pattern"].strip()
        if not pattern:
            raise forms.ValidationError("the pattern is empty")
        return pattern

    def service_kwargs(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


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
        try:
            document = _loads_json(self.cleaned_data["raw"])
        except (ValueError, RecursionError) as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise forms.ValidationError("a record is a JSON object ({...}), not a list or a single value")
        return document

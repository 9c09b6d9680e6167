"""Forms of the reconciliation rule, value mapping and FX rate pages; the API binds the same forms to its bodies, so
both refuse the same input for the same reason (an unparseable path, a negative tolerance)."""

from typing import Any

from django import forms

from console.lib.forms import BootstrapFormMixin
from exceptions.models import FxRate, ReconciliationRule, ValueMapping
from exceptions.services import (
    mapping_entries_problem,
    reconciliation_rule_apply,
    reconciliation_rule_problems,
)
from transactions.models import ProcessDefinition

PATH_HELP = (
    "a path into the event: amount, currency, entity, business_keys.contract, attributes.data.CompanyCode, "
    'attributes["tax.code"], txn_keys.contract[0]; a|b: the first present'
)
RULE_FIELDS = [
    "position",
    "name",
    "description",
    "process",
    "kind",
    "left_system",
    "left_kind",
    "left_path",
    "left_currency_path",
    "right_system",
    "right_kind",
    "right_path",
    "right_currency_path",
    "scope_path",
    "comparison",
    "tolerance",
    "mapping",
    "severity",
    "is_active",
]


class ReconciliationRuleForm(BootstrapFormMixin, forms.ModelForm):
    process = forms.ModelChoiceField(
        queryset=ProcessDefinition.objects.order_by("name"), required=False, empty_label="any process"
    )
    mapping = forms.ModelChoiceField(
        queryset=ValueMapping.objects.order_by("name"), required=False, empty_label="no mapping"
    )

    class Meta:
        model = ReconciliationRule
        fields = RULE_FIELDS
        labels = {"is_active": "Active", "scope_path": "Unique within (path)"}
        help_texts = {
            "left_path": PATH_HELP,
            "right_path": PATH_HELP,
            "tolerance": "0 or more: an amount (absolute, currency-aware) or a fraction of the left value (relative: "
            "0.01 is 1%)",
            "mapping": "translates the left value before comparing",
        }
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Validated by the service's rules below (one message per problem), not by the model's fields.
        for name in ("left_kind", "left_path", "left_currency_path", "right_currency_path"):
            self.fields[name].required = False
        self.fields["tolerance"].required = False

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        data["tolerance"] = data.get("tolerance") if data.get("tolerance") is not None else 0
        if self.errors.get("tolerance"):
            return data
        problems = reconciliation_rule_problems(
            name=data.get("name") or "",
            kind=data.get("kind") or "",
            left_kind=data.get("left_kind") or "",
            left_path=data.get("left_path") or "",
            left_currency_path=data.get("left_currency_path") or "",
            right_kind=data.get("right_kind") or "",
            right_path=data.get("right_path") or "",
            right_currency_path=data.get("right_currency_path") or "",
            scope_path=data.get("scope_path") or "",
            comparison=data.get("comparison") or "",
            tolerance=data.get("tolerance"),
            severity=data.get("severity") or "",
        )
        for name, text in problems.items():
            if name not in self.errors:
                self.add_error(name if name in self.fields else None, text)
        return data

    def service_kwargs(self) -> dict[str, Any]:
        data = {name: self.cleaned_data.get(name) for name in RULE_FIELDS}
        for name in RULE_FIELDS:
            if data[name] is None and name not in ("process", "mapping", "tolerance", "position"):
                data[name] = ""
        return data

    def preview_rule(self, rule: ReconciliationRule | None) -> ReconciliationRule:
        """The rule as typed, unsaved (the saved rule's id kept, so the preview compares with its results)."""
        draft = ReconciliationRule(pk=rule.pk if rule else None)
        reconciliation_rule_apply(draft, **self.service_kwargs())
        return draft


class ValueMappingForm(BootstrapFormMixin, forms.Form):
    slug = forms.SlugField(max_length=60, help_text="never changes once saved")
    name = forms.CharField(max_length=120)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    entries = forms.JSONField(
        widget=forms.Textarea(attrs={"rows": 8, "class": "font-monospace"}),
        help_text='a JSON object of value to value, e.g. {"DE01": "1010"}; matched ignoring case and spaces',
    )

    def __init__(self, *args: Any, mapping: ValueMapping | None = None, **kwargs: Any) -> None:
        if mapping is not None:
            kwargs.setdefault(
                "initial",
                {
                    "slug": mapping.slug,
                    "name": mapping.name,
                    "description": mapping.description,
                    "entries": mapping.entries,
                },
            )
        super().__init__(*args, **kwargs)
        self.mapping = mapping
        if mapping is not None:
            self.fields["slug"].disabled = True

    def clean_entries(self) -> dict[str, str]:
        value = self.cleaned_data.get("entries")
        problem = mapping_entries_problem(value)
        if problem:
            raise forms.ValidationError(problem)
        return value

    def service_kwargs(self) -> dict[str, Any]:
        data = {k: self.cleaned_data[k] for k in ("name", "description", "entries")}
        if self.mapping is None:
            data["slug"] = self.cleaned_data["slug"]
        return data


class FxRateForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = FxRate
        fields = ["base_currency", "quote_currency", "rate", "valid_from"]
        help_texts = {"rate": "1 base = rate quote", "valid_from": "YYYY-MM-DD; the latest rate valid on a day applies"}

    def validate_unique(self) -> None:
        # The service says which rate exists already, in its own words.
        return

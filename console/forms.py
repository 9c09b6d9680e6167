from django import forms

from console.lib.forms import BootstrapFormMixin
from transactions.selectors import process_definition_list

# Pages that offer saved views, and where each lives; a saved view can only point back at one of them.
SAVED_VIEW_PAGES = {"transactions": "transaction-list", "queue": "queue-list"}


class SavedViewForm(forms.Form):
    """Names the filter of one list page; the query is cleaned of paging and format parameters when saved."""

    page = forms.ChoiceField(choices=[(page, page) for page in SAVED_VIEW_PAGES])
    name = forms.CharField()
    query = forms.CharField(required=False, strip=False)


class SodRuleForm(BootstrapFormMixin, forms.Form):
    """A segregation-of-duties pair as managers edit it; the service validates the pair itself."""

    first_step = forms.CharField(max_length=120, label="First approval step", help_text="e.g. deal-desk")
    second_step = forms.CharField(max_length=120, label="Second approval step", help_text="held by someone else")
    process = forms.ModelChoiceField(queryset=process_definition_list(), required=False, empty_label="every process")
    description = forms.CharField(max_length=300, required=False)
    opens_case = forms.BooleanField(required=False, initial=True, label="A finding opens a control case")
    is_active = forms.BooleanField(required=False, initial=True, label="Active")


class LineageSampleForm(BootstrapFormMixin, forms.Form):
    """An auditor's sample: the transactions started in a period, optionally of one legal entity."""

    since = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="Started from")
    until = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}), label="Started before")
    entity = forms.CharField(max_length=50, required=False, label="Legal entity", help_text="e.g. DE01; empty: all")

"""Forms of the monitor pages: they validate and shape input (with the services' own rules, on the field at fault);
the services in slas/services/monitors.py decide and write."""

from typing import Any

from django import forms

from console.lib.forms import BootstrapFormMixin
from exceptions.selectors import category_list
from slas.forms import STATUS_CHOICES, DurationTextField
from slas.models import EvidenceMonitor, VolumeMonitor
from slas.services.monitors import EVIDENCE_FIELDS, VOLUME_FIELDS, evidence_monitor_problems, volume_monitor_problems


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

"""Forms of the replay target and webhook pages. Secrets are write-only: a saved one is never rendered back (not even
in the edit form); left empty on an edit, the stored one is kept."""

import json
from typing import Any

from django import forms

from console.lib.forms import BootstrapFormMixin
from exceptions.choices import HttpMethod
from exceptions.outbound import json_path_problem
from exceptions.services import WEBHOOK_EVENTS

STORAGE_HELP = "stored encrypted and never shown again; or env:NAME to read an environment variable at send time"


def _secret_field(label: str, help_text: str) -> forms.CharField:
    # render_value=False: a saved secret never travels back to a browser, not even in the edit form.
    return forms.CharField(
        required=False,
        max_length=500,
        label=label,
        help_text=help_text,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )


class OutboundForm(BootstrapFormMixin, forms.Form):
    """What replay targets and webhooks share: URL, signing secret, attempts, and the version of an edited one."""

    url = forms.URLField(max_length=500, label="URL", assume_scheme="https")
    signing_secret = _secret_field("Signing secret", f"signs each request (Closeloop-Signature); {STORAGE_HELP}")
    clear_signing_secret = forms.BooleanField(required=False, label="Remove the signing secret")
    max_attempts = forms.IntegerField(min_value=1, max_value=10, initial=5, help_text="with backoff 30 s, 1, 2, 4 min")
    version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    secret_fields: tuple[str, ...] = ("signing_secret",)

    def __init__(self, *args: Any, obj: Any = None, **kwargs: Any) -> None:
        if obj is not None:
            kwargs.setdefault("initial", {**self.initial_of(obj), "version": obj.version})
        super().__init__(*args, **kwargs)
        self.obj = obj
        for name in self.secret_fields:
            if obj is None:
                del self.fields[f"clear_{name}"]
            elif self.stored_secret(name):
                self.fields[name].help_text = "set; leave empty to keep it. " + self.fields[name].help_text

    def initial_of(self, obj: Any) -> dict[str, Any]:
        return {"url": obj.url, "max_attempts": obj.max_attempts}

    def stored_secret(self, name: str) -> str:
        return ""

    def service_kwargs(self) -> dict[str, Any]:
        data = {k: v for k, v in self.cleaned_data.items() if k != "version"}
        for name in self.secret_fields:
            if not data.get(name):
                data.pop(name, None)  # empty: keep what is stored
        return data


class ReplayTargetForm(OutboundForm):
    system = forms.CharField(max_length=100, help_text="the system as events name it (service.name), e.g. sap-s4")
    method = forms.ChoiceField(choices=HttpMethod.choices, initial=HttpMethod.POST)
    auth_header = _secret_field("Authorization header", f"e.g. Bearer <token> or Basic <base64>; {STORAGE_HELP}")
    clear_auth_header = forms.BooleanField(required=False, label="Remove the Authorization header")
    business_key_paths = forms.CharField(
        required=False,
        label="Business key (JSON paths, one per line)",
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text="e.g. $.business_keys.invoice and $.entity: two occurrences with the same values are one business "
        "object, resubmitted once",
    )
    secret_fields = ("auth_header", "signing_secret")
    field_order = ("system", "url", "method", "auth_header", "clear_auth_header", "signing_secret")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.obj is not None:
            self.fields["system"].disabled = True
            self.fields["system"].help_text = "cannot change: replays and audit entries name the target by it"

    def initial_of(self, obj: Any) -> dict[str, Any]:
        paths = "\n".join(obj.business_key_paths or [])
        return {**super().initial_of(obj), "system": obj.system, "method": obj.method, "business_key_paths": paths}

    def stored_secret(self, name: str) -> str:
        return {"auth_header": self.obj.auth_secret, "signing_secret": self.obj.signing_secret}[name]

    def clean_business_key_paths(self) -> list[str]:
        paths = [line.strip() for line in self.cleaned_data["business_key_paths"].splitlines() if line.strip()]
        problems = [problem for path in paths if (problem := json_path_problem(path))]
        if problems:
            raise forms.ValidationError("; ".join(problems))
        return paths

    def service_kwargs(self) -> dict[str, Any]:
        data = super().service_kwargs()
        if self.obj is not None:
            data.pop("system", None)
        return data


class WebhookForm(OutboundForm):
    name = forms.CharField(max_length=100)
    events = forms.MultipleChoiceField(
        required=False,
        choices=[(e, e) for e in WEBHOOK_EVENTS],
        widget=forms.SelectMultiple(attrs={"size": 3}),
        help_text="none selected: every event",
    )
    field_order = ("name", "url", "events")

    def initial_of(self, obj: Any) -> dict[str, Any]:
        return {**super().initial_of(obj), "name": obj.name, "events": list(obj.events or [])}

    def stored_secret(self, name: str) -> str:
        return self.obj.signing_secret


class DryRunForm(BootstrapFormMixin, forms.Form):
    payload = forms.CharField(
        required=False,
        label="Record to send (JSON, optional)",
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="empty: the system's latest failed event, or a sample record",
    )

    def clean_payload(self) -> dict | None:
        text = self.cleaned_data["payload"].strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("the record must be a JSON object")
        return value

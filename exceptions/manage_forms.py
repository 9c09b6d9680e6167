"""Forms of the managers' configuration pages: they read and check the input; exceptions/configuration.py writes."""

from datetime import timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from console.lib.errors import DomainError
from console.lib.forms import BootstrapFormMixin
from exceptions.classification import ClassificationSpec, RoutingSpec
from exceptions.configuration import classification_rule_problems
from exceptions.models import Category, ClassificationRule, Queue, RoutingRule
from exceptions.selectors import queue_eligible_users
from transactions.durations import duration_label, duration_parse

# `/queues/manage/` is this page; a queue with that slug would be shadowed by it (or shadow it) on /queues/<slug>/.
RESERVED_QUEUE_SLUGS = frozenset({"manage"})


class DurationTextField(forms.CharField):
    """A duration typed as 4h, 2d, 90m or 1d 4h (the same parser as process step allowances)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 30)
        kwargs.setdefault("help_text", "e.g. 4h, 2d, 90m or 1d 4h")
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return duration_label(value) if isinstance(value, timedelta) else value

    def clean(self, value: Any) -> timedelta | None:  # type: ignore[override]
        # The text is checked as text (required, length) first, then parsed.
        text = super().clean(value)
        if not text:
            return None
        try:
            return duration_parse(text)
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from exc


# ---- Taxonomy -------------------------------------------------------------------------------------------------------


class CategoryForm(BootstrapFormMixin, forms.ModelForm):
    class Meta:
        model = Category
        fields = ["slug", "name", "severity", "retryable", "suggested_action", "description"]
        labels = {"retryable": "A replay can fix it"}
        widgets = {
            "suggested_action": forms.Textarea(attrs={"rows": 2}),
            "description": forms.Textarea(attrs={"rows": 2}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            # Fingerprints of cases and routing rules name a category by its slug: it never changes.
            self.fields["slug"].disabled = True
            self.fields["slug"].help_text = "cannot change: cases and routing rules refer to it"

    def service_kwargs(self) -> dict[str, Any]:
        names = self.Meta.fields[1:] if self.instance.pk else self.Meta.fields
        return {name: self.cleaned_data[name] for name in names}


# ---- Classification rules -------------------------------------------------------------------------------------------


class ClassificationRuleForm(BootstrapFormMixin, forms.ModelForm):
    attributes = forms.JSONField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "class": "font-monospace"}),
        help_text='a JSON object of attribute name to glob, e.g. {"http.route": "/orders*"}; empty: any',
    )

    class Meta:
        model = ClassificationRule
        fields = [
            "position",
            "name",
            "category",
            "system",
            "kind",
            "error_code",
            "error_type",
            "message_pattern",
            "http_status",
            "attributes",
            "is_active",
        ]
        labels = {"message_pattern": "Message pattern", "http_status": "HTTP status", "is_active": "Active"}

    def clean_attributes(self) -> dict[str, Any]:
        value = self.cleaned_data.get("attributes")
        return {} if value in (None, "") else value

    def clean_http_status(self) -> str:
        return "".join(self.cleaned_data.get("http_status", "").split())

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if "attributes" in data:
            problems = classification_rule_problems(
                message_pattern=data.get("message_pattern", ""),
                http_status=data.get("http_status", ""),
                attributes=data["attributes"],
            )
            for name, text in problems.items():
                if name not in self.errors:
                    self.add_error(name, text)
        return data

    def service_kwargs(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}

    def spec(self, rule_id: int) -> ClassificationSpec:
        """The rule as typed, in the form classification uses (for the preview)."""
        data = self.cleaned_data
        return ClassificationSpec(
            rule_id=rule_id,
            name=data["name"],
            category=data["category"].slug,
            system=data["system"].strip(),
            kind=data["kind"].strip(),
            error_code=data["error_code"].strip(),
            error_type=data["error_type"].strip(),
            message_pattern=data["message_pattern"],
            http_status=data["http_status"],
            attributes={k: str(v) for k, v in data["attributes"].items()},
        )


# ---- Routing rules --------------------------------------------------------------------------------------------------


def _category_choices() -> list[tuple[str, str]]:
    return [(c.slug, f"{c.name} ({c.slug})") for c in Category.objects.order_by("name")]


class RoutingRuleForm(BootstrapFormMixin, forms.ModelForm):
    categories = forms.MultipleChoiceField(
        choices=_category_choices,
        required=False,
        widget=forms.SelectMultiple(attrs={"size": 7}),
        help_text="none selected: any category",
    )

    class Meta:
        model = RoutingRule
        fields = ["position", "name", "queue", "categories", "system", "kind", "entity", "min_amount", "is_active"]
        labels = {"min_amount": "Minimum amount at stake", "is_active": "Active"}

    def service_kwargs(self) -> dict[str, Any]:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}

    def spec(self, rule_id: int) -> RoutingSpec:
        data = self.cleaned_data
        return RoutingSpec(
            rule_id=rule_id,
            name=data["name"],
            queue_id=data["queue"].pk,
            categories=tuple(sorted(set(data["categories"]))),
            system=data["system"].strip(),
            kind=data["kind"].strip(),
            entity=data["entity"].strip(),
            min_amount=data["min_amount"],
        )


# ---- Queues ---------------------------------------------------------------------------------------------------------


class QueueForm(BootstrapFormMixin, forms.Form):
    # A plain form, not a ModelForm: model validation would refuse a second default before the service can hand the
    # default over from the previous queue.
    slug = forms.SlugField(max_length=60, help_text="in the queue's URL, e.g. accounts-receivable")
    name = forms.CharField(max_length=120)
    is_default = forms.BooleanField(
        required=False, label="Default queue", help_text="where cases go when no routing rule matches (exactly one)"
    )
    triage_target = DurationTextField(help_text="time to assign a new case, e.g. 4h")
    resolve_target = DurationTextField(help_text="time to resolve a case, e.g. 2d")
    notify_email = forms.EmailField(required=False, help_text="also notified of escalations")
    lead = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False, empty_label="No lead")

    def __init__(self, *args: Any, queue: Queue | None = None, **kwargs: Any) -> None:
        if queue is not None:
            kwargs.setdefault(
                "initial",
                {
                    "slug": queue.slug,
                    "name": queue.name,
                    "is_default": queue.is_default,
                    "triage_target": queue.triage_target,
                    "resolve_target": queue.resolve_target,
                    "notify_email": queue.notify_email,
                    "lead": queue.lead_id,
                },
            )
        super().__init__(*args, **kwargs)
        self.queue = queue
        self.fields["lead"].queryset = queue_eligible_users()
        if queue is not None:
            self.fields["slug"].disabled = True
            self.fields["slug"].help_text = "cannot change: links and audit entries name the queue by it"

    def clean_slug(self) -> str:
        slug = self.cleaned_data["slug"]
        if self.queue is None:
            if slug in RESERVED_QUEUE_SLUGS:
                raise forms.ValidationError(f"{slug!r} is reserved for the console's own pages")
            if Queue.objects.filter(slug=slug).exists():
                raise forms.ValidationError("a queue with this slug exists already")
        return slug

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        triage, resolve = data.get("triage_target"), data.get("resolve_target")
        if triage and resolve and triage > resolve:
            self.add_error("triage_target", "the triage target cannot be longer than the resolve target")
        if self.queue is not None and self.queue.is_default and not data.get("is_default"):
            self.add_error("is_default", "exactly one queue is the default: make another queue the default instead")
        return data

    def service_kwargs(self) -> dict[str, Any]:
        names = ["name", "is_default", "triage_target", "resolve_target", "notify_email", "lead"]
        if self.queue is None:
            names.insert(0, "slug")
        return {name: self.cleaned_data[name] for name in names}


class QueueMemberForm(BootstrapFormMixin, forms.Form):
    user = forms.ModelChoiceField(
        queryset=get_user_model().objects.none(), label="Add a member", empty_label="Choose a person"
    )

    def __init__(self, *args: Any, queue: Queue, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = queue_eligible_users().exclude(queues=queue)

"""Forms of the exceptions pages: they parse and check what was posted; the services decide and write.

Every form on a case carries the version of the case the page showed, so that the service can refuse an action
based on a stale page (StaleVersion) instead of silently overwriting someone else's change. The managers' forms
(taxonomy, rules, queues) follow the triage ones; those of replay targets and webhooks are in `outbound`.
"""

import json
import re
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from django.utils import timezone

from console.lib.errors import DomainError
from console.lib.forms import BootstrapFormMixin
from exceptions.choices import CASE_TRANSITIONS, UNCLASSIFIED, CaseStatus
from exceptions.classification import ClassificationSpec, RoutingSpec
from exceptions.models import Case, Category, ClassificationRule, ExceptionRecord, Queue, RoutingRule
from exceptions.selectors import queue_eligible_users
from exceptions.services import classification_rule_problems
from transactions.durations import duration_label, duration_parse


def start_of(day: date) -> datetime:
    """A snooze "until 2026-06-01" wakes at the start of that day in the console's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


class CaseForm(BootstrapFormMixin, forms.Form):
    """Base of the forms on a case page: the version the page was rendered from."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)

    def __init__(self, *args: Any, case: Case, **kwargs: Any) -> None:
        self.case = case
        kwargs.setdefault("initial", {})["version"] = case.version
        # Several of these forms share a page (and field names such as `note`): ids must stay unique.
        kwargs.setdefault("auto_id", f"id_{type(self).__name__.removesuffix('Form').lower()}_%s")
        super().__init__(*args, **kwargs)


class AssignForm(CaseForm):
    assignee = forms.ChoiceField(label="Assign to")

    def __init__(self, *args: Any, actor: AbstractBaseUser, members: QuerySet, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.actor = actor
        self.members = {str(m.pk): m for m in members}
        choices = [("me", f"me ({actor.get_username()})")]
        choices += [(pk, m.get_username()) for pk, m in self.members.items() if m.pk != actor.pk]
        choices.append(("none", "nobody (unassign)"))
        self.fields["assignee"].choices = choices

    def clean_assignee(self) -> AbstractBaseUser | None:
        value = self.cleaned_data["assignee"]
        if value == "me":
            return self.actor
        if value == "none":
            return None
        return self.members[value]


class CommentForm(CaseForm):
    body = forms.CharField(label="Comment", max_length=5000, widget=forms.Textarea(attrs={"rows": 3}))


class TransitionForm(CaseForm):
    status = forms.ChoiceField(label="New status")
    note = forms.CharField(max_length=2000, required=False, help_text="why (kept in the history)")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Snoozing (ignored) needs a condition, so it has a form of its own.
        allowed = CASE_TRANSITIONS.get(self.case.status, set()) - {CaseStatus.IGNORED}
        self.fields["status"].choices = [(s.value, s.label) for s in CaseStatus if s in allowed]


class SnoozeConditionMixin:
    """Snoozing is `ignored` until a date or until N more occurrences; exactly one of the two."""

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()  # type: ignore[misc]
        until, occurrences = cleaned.get("until"), cleaned.get("occurrences")
        if until is None and occurrences is None and not self.errors:  # type: ignore[attr-defined]
            raise forms.ValidationError("Snooze until a date or for a number of further occurrences.")
        if until is not None and occurrences is not None:
            raise forms.ValidationError("Choose a date or a number of occurrences, not both.")
        if until is not None and until <= timezone.localdate():
            self.add_error("until", "The date must be after today.")  # type: ignore[attr-defined]
        return cleaned

    def snooze(self) -> dict[str, Any]:
        """The service's keyword arguments for the condition."""
        until = self.cleaned_data.get("until")  # type: ignore[attr-defined]
        return {
            "snooze_until": start_of(until) if until else None,
            "snooze_occurrences": self.cleaned_data.get("occurrences"),  # type: ignore[attr-defined]
        }


class SnoozeForm(SnoozeConditionMixin, CaseForm):
    until = forms.DateField(required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"}))
    occurrences = forms.IntegerField(
        required=False, min_value=1, max_value=1_000_000, label="or for N more occurrences"
    )
    note = forms.CharField(max_length=2000, required=False)


class MergeForm(CaseForm):
    cases = forms.CharField(
        label="Merge these cases into this one", max_length=500, help_text="case numbers, e.g. 12, 15, #18"
    )

    def clean_cases(self) -> list[int]:
        ids = sorted({int(n) for n in re.findall(r"\d+", self.cleaned_data["cases"])})
        if not ids:
            raise forms.ValidationError("Name at least one case number.")
        if self.case.pk in ids:
            raise forms.ValidationError(f"A case cannot be merged into itself (#{self.case.pk}).")
        return ids


class SplitForm(CaseForm):
    occurrence = forms.TypedChoiceField(coerce=int, label="Occurrence")
    message_contains = forms.CharField(
        max_length=200,
        required=False,
        label="Message contains",
        help_text="future occurrences whose message contains this text follow the new case (default: the whole "
        "message)",
    )

    def __init__(self, *args: Any, occurrences: list[ExceptionRecord], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["occurrence"].choices = [
            (o.pk, f"{o.occurred_at:%Y-%m-%d %H:%M} · {o.error_code or o.error_type} · {o.error_message[:60]}")
            for o in occurrences
        ]


# ---- Bulk actions on a queue ----------------------------------------------------------------------------------------

BULK_ACTIONS = {
    "assign_me": "Assign to me",
    "assign": "Assign to",
    "resolve": "Resolve",
    "ignore": "Snooze (ignore)",
}


class BulkActionForm(SnoozeConditionMixin, BootstrapFormMixin, forms.Form):
    """The selected rows (`selected` = case id) and every row's `case` = "<id>:<version>" from the queue page."""

    action = forms.ChoiceField(choices=list(BULK_ACTIONS.items()))
    assignee = forms.ModelChoiceField(queryset=None, required=False, label="Assignee", empty_label="choose…")
    until = forms.DateField(required=False, label="Snooze until", widget=forms.DateInput(attrs={"type": "date"}))
    occurrences = forms.IntegerField(required=False, min_value=1, max_value=1_000_000, label="or N occurrences")

    def __init__(self, *args: Any, members: QuerySet, **kwargs: Any) -> None:
        # The queue page's filter form has an `assignee` field too.
        kwargs.setdefault("auto_id", "id_bulk_%s")
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = members
        self.fields["assignee"].label_from_instance = lambda user: user.get_username()

    def clean(self) -> dict[str, Any]:
        action = self.cleaned_data.get("action")
        # Only a snooze needs its condition; the other actions ignore the date and count fields.
        cleaned = super().clean() if action == "ignore" else self.cleaned_data
        if action == "assign" and cleaned.get("assignee") is None and "assignee" not in self.errors:
            self.add_error("assignee", "Choose whom to assign the cases to.")
        cleaned["versions"] = self._versions()
        if not cleaned["versions"]:
            raise forms.ValidationError("Select at least one case.")
        return cleaned

    def _versions(self) -> dict[int, int]:
        # Each row posts its version whether or not it is selected; only the selected rows are acted on.
        known: dict[int, int] = {}
        for value in self.data.getlist("case"):
            case_id, _, version = str(value).partition(":")
            if case_id.isdigit() and version.isdigit():
                known[int(case_id)] = int(version)
        selected = {int(v) for v in self.data.getlist("selected") if str(v).isdigit()}
        return {case_id: version for case_id, version in known.items() if case_id in selected}

    def service_call(self, actor: AbstractBaseUser) -> tuple[str, dict[str, Any]]:
        """The cases_bulk action and its keyword arguments."""
        action = self.cleaned_data["action"]
        if action == "assign_me":
            return "assign", {"assignee": actor}
        if action == "assign":
            return "assign", {"assignee": self.cleaned_data["assignee"]}
        if action == "resolve":
            return "transition", {"status": CaseStatus.RESOLVED}
        return "transition", {"status": CaseStatus.IGNORED, **self.snooze()}


class ReplayForm(CaseForm):
    """Re-drive a failed occurrence through its system's replay target, optionally with a repaired payload."""

    occurrence = forms.TypedChoiceField(coerce=int, label="Occurrence")
    payload = forms.CharField(
        required=False,
        label="Repaired payload (JSON, optional)",
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        help_text="leave empty to send the stored original; the difference is kept in the history",
    )
    reason = forms.CharField(
        required=False,
        max_length=2000,
        label="Reason to send it again (only if asked)",
        widget=forms.TextInput(),
        help_text="needed when an earlier replay of this occurrence or business object got through; audited",
    )

    def __init__(self, *args: Any, occurrences: list[ExceptionRecord], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["occurrence"].choices = [
            (o.pk, f"{o.occurred_at:%Y-%m-%d %H:%M} · {o.error_code or o.error_type} · {o.error_message[:60]}")
            for o in occurrences
        ]

    def clean_payload(self) -> dict | None:
        text = self.cleaned_data["payload"].strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from exc
        if not isinstance(value, dict):
            raise forms.ValidationError("the payload must be a JSON object")
        return value


# `/queues/manage/` is the queue management page; a queue with that slug would be shadowed by it (or shadow it) on
# /queues/<slug>/.
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


class CaseClassifyForm(ClassificationRuleForm):
    """The rule proposed from an unclassified case (generalised from its latest failure, editable), with the version
    of the case the page showed and a note for whoever reviews a proposal."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    note = forms.CharField(max_length=500, required=False, help_text="why this category (kept with a proposal)")

    def __init__(self, *args: Any, case: Case, **kwargs: Any) -> None:
        kwargs.setdefault("initial", {})["version"] = case.version
        super().__init__(*args, **kwargs)
        self.fields["category"].queryset = Category.objects.exclude(slug=UNCLASSIFIED).order_by("name")
        self.fields["category"].empty_label = "choose the category…"

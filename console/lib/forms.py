"""Form plumbing shared by the console pages."""

from typing import Any

from django import forms


class BootstrapFormMixin:
    """Bootstrap 5 classes on every visible widget, and `is-invalid` on the fields that failed validation."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():  # type: ignore[attr-defined]
            widget = field.widget
            if isinstance(widget, forms.HiddenInput):  # nothing to style (the version a case form was based on)
                continue
            if isinstance(widget, forms.CheckboxInput):
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select form-select-sm"
            else:
                css = "form-control form-control-sm"
            widget.attrs["class"] = f"{widget.attrs.get('class', '')} {css}".strip()

    def full_clean(self) -> None:
        super().full_clean()  # type: ignore[misc]
        for name in self.errors:  # type: ignore[attr-defined]
            if name in self.fields:  # type: ignore[attr-defined]
                widget = self.fields[name].widget  # type: ignore[attr-defined]
                widget.attrs["class"] = f"{widget.attrs.get('class', '')} is-invalid".strip()


class BootstrapFilterForm(BootstrapFormMixin, forms.Form):
    """The form of a django-filter FilterSet shown on a page (`class Meta: form = BootstrapFilterForm`); the API's use
    of the same FilterSet ignores the classes."""

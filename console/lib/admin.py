"""Admin plumbing shared by the apps: the admin inspects, the audited services write."""

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest


class ReadOnlyAdminMixin:
    """Look, do not touch: every change goes through a service, which checks it and writes its audit entry in the same
    transaction (an admin save would do neither)."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class ReadOnlyModelAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """A model an administrator may inspect (list, search, detail) but not change here."""


class ReadOnlyTabularInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Rows shown on their parent's page, read-only like the parent."""

    extra = 0

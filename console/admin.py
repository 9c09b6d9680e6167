"""The admin shows the audit trail read-only, with its hashes (the console's /audit/ page hides them)."""

from django.contrib import admin
from django.http import HttpRequest

from console.lib.audit import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["id", "occurred_at", "actor", "action", "object_type", "object_id", "object_repr"]
    list_filter = ["action"]
    search_fields = ["actor", "action", "object_id", "object_repr"]
    ordering = ["-id"]

    # Entries are append-only (the model and a database trigger refuse changes); the admin offers none.
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

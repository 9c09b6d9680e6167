"""The admin shows the audit trail read-only, with its hashes (the console's /audit/ page hides them)."""

from django.contrib import admin

from console.lib.admin import ReadOnlyModelAdmin
from console.lib.audit import AuditEntry


# Entries are append-only (the model and a database trigger refuse changes); the admin offers none.
@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "occurred_at", "actor", "action", "object_type", "object_id", "object_repr"]
    list_filter = ["action"]
    search_fields = ["actor", "action", "object_id", "object_repr"]
    ordering = ["-id"]

"""What an administrator inspects of the transactions app: ingest sources and their tokens, dead letters and process
definitions. Read-only: sources, tokens and processes change through the audited services of the console pages, and
dead letters are replayed from /dead-letters/."""

from django.contrib import admin

from console.lib.admin import ReadOnlyModelAdmin, ReadOnlyTabularInline
from transactions.models import DeadLetter, IngestSource, IngestToken, ProcessDefinition, ProcessStep


class IngestTokenInline(ReadOnlyTabularInline):
    model = IngestToken
    # The digest is what a presented token is checked against: no page needs to show it.
    fields = readonly_fields = ["prefix", "label", "created_at", "created_by", "revoked_at", "last_used_at"]


@admin.register(IngestSource)
class IngestSourceAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "description", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "description"]
    inlines = [IngestTokenInline]


@admin.register(IngestToken)
class IngestTokenAdmin(ReadOnlyModelAdmin):
    list_display = ["prefix", "source", "label", "created_at", "created_by", "revoked_at", "last_used_at"]
    list_filter = ["source"]
    list_select_related = ["source"]
    search_fields = ["prefix", "label", "created_by"]
    fields = readonly_fields = ["source", *IngestTokenInline.fields]


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "received_at", "source", "channel", "status", "reason", "replay_count"]
    list_filter = ["status", "channel", "source"]
    list_select_related = ["source"]
    search_fields = ["reason"]
    # The table grows with every rejected record: no COUNT(*) of all of it on each page.
    show_full_result_count = False


class ProcessStepInline(ReadOnlyTabularInline):
    model = ProcessStep
    ordering = ["position"]


@admin.register(ProcessDefinition)
class ProcessDefinitionAdmin(ReadOnlyModelAdmin):
    list_display = ["name", "slug", "correlation_keys", "is_active", "updated_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug"]
    inlines = [ProcessStepInline]

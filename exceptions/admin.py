"""What an administrator inspects of the exceptions app: the taxonomy, classification and routing rules, queues and
cases. Read-only: managers edit the configuration on the console's pages and operators act on cases there, through
services that check versions and permissions and write the audit trail (an admin save would skip all of that)."""

from django.contrib import admin

from console.lib.admin import ReadOnlyModelAdmin
from exceptions.models import Case, Category, ClassificationRule, Queue, RoutingRule


@admin.register(Category)
class CategoryAdmin(ReadOnlyModelAdmin):
    list_display = ["slug", "name", "severity", "retryable"]
    list_filter = ["severity", "retryable"]
    search_fields = ["slug", "name"]


@admin.register(ClassificationRule)
class ClassificationRuleAdmin(ReadOnlyModelAdmin):
    list_display = ["position", "name", "category", "system", "kind", "error_code", "http_status", "is_active"]
    list_filter = ["is_active", "category"]
    list_select_related = ["category"]
    search_fields = ["name", "system", "kind", "error_code", "message_pattern"]


@admin.register(RoutingRule)
class RoutingRuleAdmin(ReadOnlyModelAdmin):
    list_display = ["position", "name", "queue", "categories", "system", "kind", "entity", "min_amount", "is_active"]
    list_filter = ["is_active", "queue"]
    list_select_related = ["queue"]
    search_fields = ["name", "system", "kind"]


@admin.register(Queue)
class QueueAdmin(ReadOnlyModelAdmin):
    list_display = ["slug", "name", "is_default", "lead", "triage_target", "resolve_target"]
    list_select_related = ["lead"]
    search_fields = ["slug", "name"]


@admin.register(Case)
class CaseAdmin(ReadOnlyModelAdmin):
    list_display = ["id", "title", "status", "priority", "queue", "category", "assignee", "occurrence_count"]
    list_filter = ["status", "priority", "queue", "category"]
    list_select_related = ["queue", "category", "assignee"]
    search_fields = ["fingerprint", "title"]
    ordering = ["-id"]
    # Cases accumulate for years: no COUNT(*) of the whole table on each page.
    show_full_result_count = False

"""The admin lists SLA data read-only: managers change definitions and calendars on the console, where every change
is validated and audited (an admin edit would be neither)."""

from django.contrib import admin
from django.http import HttpRequest

from slas.models import BusinessCalendar, EvidenceMonitor, Holiday, SlaClock, SlaDefinition, VolumeMonitor


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "time_zone", "version"]


@admin.register(Holiday)
class HolidayAdmin(ReadOnlyAdmin):
    list_display = ["calendar", "date", "name"]
    list_filter = ["calendar"]


@admin.register(SlaDefinition)
class SlaDefinitionAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "process", "start_kind", "stop_kind", "target", "calendar", "is_active", "version"]
    list_filter = ["is_active", "calendar"]


@admin.register(SlaClock)
class SlaClockAdmin(ReadOnlyAdmin):
    list_display = ["id", "definition", "txn_id", "status", "started_at", "due_at", "breached_at", "met_at"]
    list_filter = ["status", "definition"]
    list_select_related = ["definition"]
    show_full_result_count = False  # no COUNT(*) over every clock on each page


@admin.register(VolumeMonitor)
class VolumeMonitorAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "system", "kind", "mode", "min_count", "currently_violated", "is_active"]


@admin.register(EvidenceMonitor)
class EvidenceMonitorAdmin(ReadOnlyAdmin):
    list_display = ["slug", "name", "trigger_kind", "evidence_kind", "direction", "window", "is_active"]

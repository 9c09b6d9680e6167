import django_filters

from console.lib.audit import AuditEntry
from console.lib.filters import UtcDateTimeFilter


class AuditEntryFilterSet(django_filters.FilterSet):
    """Serves both /audit/ and /api/v1/audit-entries/."""

    actor = django_filters.CharFilter(lookup_expr="icontains")
    action = django_filters.CharFilter(lookup_expr="startswith")
    object_type = django_filters.CharFilter()
    object_id = django_filters.CharFilter()
    since = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = UtcDateTimeFilter(field_name="occurred_at", lookup_expr="lt")

    class Meta:
        model = AuditEntry
        fields = ["actor", "action", "object_type", "object_id", "since", "until"]

"""The five roles of Closeloop as Django groups, each with its capabilities."""

from django.contrib.auth.models import Group, Permission
from django.db import transaction

FINANCE_OPS, MANAGER, COMPLIANCE, INTEGRATION, ADMIN = "finance_ops", "manager", "compliance", "integration", "admin"

ROLE_CAPABILITIES: dict[str, set[str]] = {
    FINANCE_OPS: {"view_transactions", "view_cases", "act_on_cases"},
    # Managers read the lineage too: they own the processes' approval controls and the segregation-of-duties rules.
    MANAGER: {
        "view_transactions",
        "view_cases",
        "act_on_cases",
        "act_on_all_queues",
        "edit_rules",
        "view_dashboards",
        "export_lineage",
    },
    COMPLIANCE: {"view_transactions", "view_cases", "view_dashboards", "view_audit", "export_lineage"},
    INTEGRATION: {"view_transactions", "manage_ingest", "replay_dead_letters"},
}
ALL_CAPABILITIES = set().union(*ROLE_CAPABILITIES.values()) | {"manage_users"}
ROLE_CAPABILITIES[ADMIN] = ALL_CAPABILITIES
ROLES = tuple(ROLE_CAPABILITIES)


@transaction.atomic
def sync_role_groups() -> None:
    """Create the role groups and set exactly their capabilities (idempotent; runs after every migrate)."""
    permissions = {p.codename: p for p in Permission.objects.filter(content_type__app_label="console")}
    for role, capabilities in ROLE_CAPABILITIES.items():
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set([permissions[c] for c in sorted(capabilities) if c in permissions])

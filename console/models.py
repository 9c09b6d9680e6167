"""Console models: the audit trail (defined in console.lib so every app can write it) and role capabilities."""

from django.db import models

from console.lib.audit import AuditEntry
from console.lib.saved_views import SavedView


class Capability(models.Model):
    """Anchor for Closeloop's role capabilities as Django permissions; it has no table of its own."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_transactions", "Read transactions and their timelines"),
            ("view_cases", "Read exception cases"),
            ("act_on_cases", "Act on cases in the queues one belongs to"),
            ("act_on_all_queues", "Act on cases in every queue"),
            ("edit_rules", "Edit taxonomy, classification, routing, queues, processes, SLAs and ROI assumptions"),
            ("view_dashboards", "See SLA and ROI dashboards"),
            ("view_audit", "Read the audit trail"),
            ("export_lineage", "Export approval lineage and evidence"),
            ("manage_ingest", "Manage ingest sources, tokens, aliases, extraction and redaction rules"),
            ("replay_dead_letters", "Browse and replay dead-lettered records"),
            ("manage_users", "Manage users and groups"),
        ]

    def __str__(self) -> str:
        return "capability"


__all__ = ["AuditEntry", "Capability", "SavedView"]

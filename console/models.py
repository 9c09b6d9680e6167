"""Console models: the audit trail (defined in console.lib so every app can write it) and role capabilities."""

from django.db import models

from console.lib.audit import AuditEntry
from console.lib.capabilities import CAPABILITIES
from console.lib.saved_views import SavedView


class Capability(models.Model):
    """Anchor for Closeloop's role capabilities as Django permissions; it has no table of its own."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = list(CAPABILITIES.items())

    def __str__(self) -> str:
        return "capability"


__all__ = ["AuditEntry", "Capability", "SavedView"]

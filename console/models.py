"""Console models: the audit trail (defined in console.lib so every app can write it) and role capabilities."""

import uuid

from django.db import models

from console.lib.audit import AuditEntry
from console.lib.capabilities import CAPABILITIES
from console.lib.models import TimeStampedModel
from console.lib.saved_views import SavedView
from transactions.models import ProcessDefinition


class Capability(models.Model):
    """Anchor for Closeloop's role capabilities as Django permissions; it has no table of its own."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = list(CAPABILITIES.items())

    def __str__(self) -> str:
        return "capability"


class SodRule(TimeStampedModel):
    """Segregation of duties: two approval steps that must be approved by different people (managers edit these)."""

    # Lives in the console beside the lineage that applies it: only the compliance checks read it, and the steps are
    # named as approvals carry them (free text), so the process definitions below need not know about it.
    process = models.ForeignKey(
        ProcessDefinition, null=True, blank=True, on_delete=models.CASCADE, related_name="+", help_text="empty: every"
    )
    first_step = models.CharField(max_length=120, help_text="approval step, e.g. deal-desk")
    second_step = models.CharField(max_length=120, help_text="approval step that another person must hold")
    description = models.CharField(max_length=300, blank=True)
    opens_case = models.BooleanField(default=True, help_text="a finding opens a control case")
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["first_step", "second_step", "id"]

    def __str__(self) -> str:
        return f"{self.first_step} / {self.second_step}"


class AuditChainCheck(models.Model):
    """One verification of the audit chain (hourly, or "Verify now"): what it found and the head it saw."""

    checked_at = models.DateTimeField()
    actor = models.CharField(max_length=200)
    ok = models.BooleanField()
    checked = models.PositiveIntegerField()
    head_hash = models.CharField(max_length=64)
    break_entry_id = models.BigIntegerField(null=True, blank=True)
    break_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["-checked_at", "-id"]

    def __str__(self) -> str:
        return f"chain check {self.checked_at:%Y-%m-%d %H:%M} ({'ok' if self.ok else 'broken'})"


class EvidenceJob(models.Model):
    """A bulk lineage export (an auditor's sample) built by a worker into a file; the page shows its progress."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    requested_by = models.CharField(max_length=200)
    since = models.DateTimeField()
    until = models.DateTimeField()
    entity = models.CharField(max_length=50, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    rows = models.PositiveBigIntegerField(default=0)
    path = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, blank=True)
    error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "running", "done", "failed"]),
                name="evidence_job_status_valid",
            )
        ]

    def __str__(self) -> str:
        return f"evidence job {self.pk} ({self.status})"

    @property
    def percent(self) -> int:
        return 100 if self.status == self.Status.DONE else (100 * self.done // self.total if self.total else 0)


__all__ = ["AuditChainCheck", "AuditEntry", "Capability", "EvidenceJob", "SavedView", "SodRule"]

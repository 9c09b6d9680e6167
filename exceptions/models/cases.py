"""Exceptions: taxonomy, classification and routing rules, queues, cases and their occurrences, replays, outbound
webhooks and notifications."""

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q

from console.lib.models import TimeStampedModel
from exceptions.choices import (
    PRIORITIES,
    REPLAY_IN_FLIGHT,
    ActivityKind,
    CaseStatus,
    DeliveryStatus,
    HttpMethod,
    ReplayStatus,
    Severity,
)
from transactions.models import Transaction


class Category(models.Model):
    """A taxonomy category of failures (data quality, mapping, business rule, platform, security, control...)."""

    slug = models.SlugField(max_length=40, unique=True)
    name = models.CharField(max_length=80)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    retryable = models.BooleanField(default=False, help_text="a replay of the failed step can fix it")
    suggested_action = models.TextField(blank=True)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"
        constraints = [
            models.CheckConstraint(condition=Q(severity__in=Severity.values), name="category_severity_valid")
        ]

    def __str__(self) -> str:
        return self.name


class ClassificationRule(TimeStampedModel):
    """Ordered rule: the first active rule whose conditions all hold classifies the failure."""

    position = models.PositiveIntegerField(default=100)
    name = models.CharField(max_length=120)
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="rules")
    system = models.CharField(max_length=100, blank=True, help_text="glob, e.g. sap-*")
    kind = models.CharField(max_length=200, blank=True, help_text="glob, a|b for alternatives")
    error_code = models.CharField(max_length=100, blank=True, help_text="glob on error.code")
    error_type = models.CharField(max_length=200, blank=True, help_text="glob on error.type")
    message_pattern = models.CharField(max_length=300, blank=True, help_text="regular expression, case-insensitive")
    http_status = models.CharField(max_length=20, blank=True, help_text="e.g. 429, 5xx or 500-504")
    attributes = models.JSONField(default=dict, blank=True, help_text='{"attribute name": "glob"}')
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class Queue(TimeStampedModel):
    """A finance-operations work queue (accounts receivable, billing, tax...) with members and targets."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    is_default = models.BooleanField(default=False, help_text="where cases go when no routing rule matches")
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="led_queues"
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="queues")
    triage_target = models.DurationField(help_text="time to assign a new case")
    resolve_target = models.DurationField(help_text="time to resolve a case")
    notify_email = models.EmailField(blank=True, help_text="also notified of escalations")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="queue_one_default")
        ]

    def __str__(self) -> str:
        return self.name


class RoutingRule(TimeStampedModel):
    """Ordered rule: the first active rule whose conditions all hold puts the case in its queue."""

    position = models.PositiveIntegerField(default=100)
    name = models.CharField(max_length=120)
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="rules")
    categories = models.JSONField(default=list, blank=True, help_text="category slugs; empty: any")
    system = models.CharField(max_length=100, blank=True, help_text="glob")
    kind = models.CharField(max_length=200, blank=True, help_text="glob, a|b for alternatives")
    entity = models.CharField(max_length=50, blank=True, help_text="glob on the legal entity")
    min_amount = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class Case(models.Model):
    """Repeated occurrences of one failure (same fingerprint), worked as one unit in a queue."""

    fingerprint = models.CharField(max_length=64)
    title = models.CharField(max_length=300)
    latest_message = models.CharField(
        max_length=200, blank=True, help_text="the latest occurrence's error message, one line: the queue shows it"
    )
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="cases")
    rule = models.ForeignKey(ClassificationRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    explanation = models.CharField(max_length=300, blank=True)
    system = models.CharField(max_length=100)
    kind = models.CharField(max_length=200)
    error_signature = models.CharField(max_length=300, blank=True, help_text="the normalised error")
    queue = models.ForeignKey(Queue, on_delete=models.PROTECT, related_name="cases")
    routing_rule = models.ForeignKey(RoutingRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_cases"
    )
    priority = models.PositiveSmallIntegerField(choices=PRIORITIES, default=3)
    status = models.CharField(max_length=12, choices=CaseStatus.choices, default=CaseStatus.OPEN)
    occurrence_count = models.PositiveIntegerField(default=0)
    amount_at_stake = models.DecimalField(max_digits=20, decimal_places=2, default=0)
    currency = models.CharField(max_length=3, blank=True)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    triage_due_at = models.DateTimeField(null=True, blank=True)
    resolve_due_at = models.DateTimeField(null=True, blank=True)
    escalation_level = models.PositiveSmallIntegerField(default=0)
    snooze_until = models.DateTimeField(null=True, blank=True)
    snooze_occurrences = models.PositiveIntegerField(null=True, blank=True, help_text="wake after N more occurrences")
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        indexes = [
            # Grouping: the live case of a fingerprint (WHERE fingerprint=? AND merged_into IS NULL).
            models.Index(fields=["fingerprint"], name="case_fingerprint_idx", condition=Q(merged_into__isnull=True)),
            # The queue page: WHERE queue_id=? AND status IN (...) ORDER BY priority, last_seen DESC.
            models.Index(fields=["queue", "status", "priority", "-last_seen"], name="case_queue_idx"),
            # The queue page's sortable columns: WHERE queue_id=? ORDER BY <column>, id (either direction), read in
            # index order so that a page of 50 never sorts the whole queue.
            models.Index(fields=["queue", "first_seen", "id"], name="case_queue_age_idx"),
            models.Index(fields=["queue", "last_seen", "id"], name="case_queue_seen_idx"),
            models.Index(fields=["queue", "occurrence_count", "id"], name="case_queue_count_idx"),
            models.Index(fields=["queue", "amount_at_stake", "id"], name="case_queue_amount_idx"),
            # Escalation sweep: WHERE status IN active AND (triage_due_at < now OR resolve_due_at < now).
            models.Index(fields=["status", "resolve_due_at"], name="case_due_idx"),
            models.Index(fields=["assignee", "status"], name="case_assignee_idx"),
        ]
        constraints = [models.CheckConstraint(condition=Q(status__in=CaseStatus.values), name="case_status_valid")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.title}"


class FingerprintOverride(TimeStampedModel):
    """Written when operators merge or split cases, so that future occurrences follow their choice."""

    fingerprint = models.CharField(max_length=64, help_text="occurrences with this fingerprint...")
    message_contains = models.CharField(max_length=200, blank=True, help_text="...and (optionally) this text")
    target = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="overrides", help_text="go to this case")
    reason = models.CharField(max_length=20, choices=[("merge", "merge"), ("split", "split")])
    created_by = models.CharField(max_length=200)
    is_active = models.BooleanField(default=True)

    class Meta:
        indexes = [models.Index(fields=["fingerprint"], name="override_fingerprint_idx")]

    def __str__(self) -> str:
        return f"{self.fingerprint[:12]} -> case {self.target_id}"


class ExceptionRecord(models.Model):
    """One occurrence of a case: a failed event, classified, or a signal (such as an SLA's silence)."""

    event_id = models.BigIntegerField(
        unique=True, null=True, blank=True, help_text="the failed event (no FK: events are partitioned); none: a signal"
    )
    event_received_at = models.DateTimeField(null=True, blank=True)
    signal_key = models.CharField(
        max_length=200, blank=True, default="", help_text="the signal this occurrence records, unique; empty: an event"
    )
    txn = models.ForeignKey(Transaction, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="occurrences")
    category = models.ForeignKey(Category, on_delete=models.PROTECT, related_name="+")
    rule = models.ForeignKey(ClassificationRule, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    explanation = models.CharField(max_length=300)
    fingerprint = models.CharField(max_length=64)
    system = models.CharField(max_length=100)
    kind = models.CharField(max_length=200)
    error_code = models.CharField(max_length=100, blank=True)
    error_type = models.CharField(max_length=200, blank=True)
    error_message = models.TextField(blank=True)
    entity = models.CharField(max_length=50, blank=True)
    amount = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # A case's occurrences, newest first.
            models.Index(fields=["case", "-occurred_at"], name="occurrence_case_idx"),
            # Rule preview over the last 7 days and the taxonomy gap: WHERE occurred_at >= ?.
            models.Index(fields=["occurred_at"], name="occurrence_time_idx"),
        ]
        constraints = [
            # Recording a signal is idempotent (WHERE signal_key=?); events have their own unique event_id.
            models.UniqueConstraint(
                fields=["signal_key"], condition=~Q(signal_key=""), name="occurrence_signal_key_unique"
            ),
            # An occurrence comes from exactly one source: a failed event or a signal.
            models.CheckConstraint(
                condition=(Q(event_id__isnull=False) & Q(signal_key=""))
                | (Q(event_id__isnull=True) & ~Q(signal_key="")),
                name="occurrence_one_source",
            ),
        ]

    def __str__(self) -> str:
        return f"occurrence of case {self.case_id}"


class CaseActivity(models.Model):
    """A case's history as operators read it: comments, assignments, status changes, recurrences."""

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="activities")
    actor = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=ActivityKind.choices)
    body = models.TextField(blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["case", "created_at"], name="activity_case_idx")]

    def __str__(self) -> str:
        return f"{self.kind} on case {self.case_id}"


class ReplayTarget(TimeStampedModel):
    """Where a replay of a failed step is sent: a system's endpoint that takes the record again."""

    system = models.CharField(max_length=100, unique=True)
    url = models.URLField(max_length=500)
    method = models.CharField(max_length=6, choices=HttpMethod.choices, default=HttpMethod.POST)
    auth_secret = models.CharField(
        max_length=1000, blank=True, help_text="sent as Authorization; sealed (fernet:...) or a reference env:NAME"
    )
    signing_secret = models.CharField(
        max_length=1000, blank=True, help_text="signs each request (Closeloop-Signature); sealed or env:NAME"
    )
    business_key_paths = models.JSONField(
        default=list, blank=True, help_text='JSON paths naming the business object, e.g. ["$.business_keys.invoice"]'
    )
    max_attempts = models.PositiveSmallIntegerField(default=5, help_text="sends before a replay fails, with backoff")
    is_active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["system"]
        constraints = [models.CheckConstraint(condition=Q(method__in=HttpMethod.values), name="target_method_valid")]

    def __str__(self) -> str:
        return f"{self.system} -> {self.url}"


class Replay(models.Model):
    """One re-drive of a failed occurrence; the target sees its idempotency_key (occurrence + payload) and its id."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="replays")
    occurrence = models.ForeignKey(ExceptionRecord, on_delete=models.CASCADE, related_name="replays")
    target = models.ForeignKey(ReplayTarget, null=True, blank=True, on_delete=models.SET_NULL, related_name="replays")
    idempotency_key = models.CharField(max_length=64, help_text="SHA-256 of the occurrence and the payload sent")
    business_key = models.CharField(
        max_length=300, blank=True, help_text="the business object, from the target's paths"
    )
    business_key_hash = models.CharField(max_length=64, blank=True)
    reason = models.TextField(blank=True, help_text="why it was sent although an earlier replay got through")
    previous = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    status = models.CharField(max_length=12, choices=ReplayStatus.choices, default=ReplayStatus.PENDING)
    payload = models.JSONField()
    payload_before = models.JSONField(null=True, blank=True, help_text="the original, when the payload was repaired")
    target_url = models.URLField(max_length=500)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    outcome = models.CharField(max_length=300, blank=True)
    requested_by = models.CharField(max_length=200)
    attempts = models.PositiveSmallIntegerField(default=0)
    duration_ms = models.PositiveIntegerField(null=True, blank=True, help_text="of the last attempt")
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    not_before = models.DateTimeField(null=True, blank=True, help_text="a retry waits until then")
    sent_at = models.DateTimeField(null=True, blank=True)
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # Earlier replays of a business object: WHERE target_id=? AND business_key_hash=?.
            models.Index(fields=["target", "business_key_hash"], name="replay_business_key_idx"),
            # A target's delivery log: WHERE target_id=? ORDER BY created_at DESC.
            models.Index(fields=["target", "-created_at"], name="replay_target_log_idx"),
        ]
        constraints = [
            # A replay can never be in flight twice for the same occurrence.
            models.UniqueConstraint(
                fields=["occurrence"],
                condition=Q(status__in=REPLAY_IN_FLIGHT),
                name="replay_one_in_flight_per_occurrence",
            ),
            # Nor twice for the same business object at one target (two occurrences of one invoice), even when two
            # operators ask at the same instant for different cases, whose locks do not serialise them.
            models.UniqueConstraint(
                fields=["target", "business_key_hash"],
                condition=Q(status__in=REPLAY_IN_FLIGHT) & ~Q(business_key_hash=""),
                name="replay_one_in_flight_per_business_key",
            ),
        ]

    def __str__(self) -> str:
        return f"replay {self.pk}"


class OutboundWebhook(TimeStampedModel):
    """A URL notified (signed JSON POST) of case assignments, escalations and reopenings."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=500)
    events = models.JSONField(default=list, blank=True, help_text='e.g. ["assigned", "escalated", "reopened"]')
    signing_secret = models.CharField(
        max_length=1000, blank=True, help_text="signs each request (Closeloop-Signature); sealed or env:NAME"
    )
    max_attempts = models.PositiveSmallIntegerField(default=5, help_text="sends before a delivery fails, with backoff")
    is_active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class WebhookDelivery(models.Model):
    """One notification to one webhook and how its attempts went; its id is the delivery id receivers dedupe on."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    webhook = models.ForeignKey(OutboundWebhook, on_delete=models.CASCADE, related_name="deliveries")
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    event = models.CharField(max_length=30)
    body = models.JSONField(help_text="sent unchanged on every attempt")
    status = models.CharField(max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True, help_text="of the last attempt")
    error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # A webhook's delivery log: WHERE webhook_id=? ORDER BY created_at DESC.
            models.Index(fields=["webhook", "-created_at"], name="delivery_webhook_log_idx"),
            # The sweep: WHERE status IN (pending, sending) AND next_attempt_at < ?.
            models.Index(
                fields=["status", "next_attempt_at"],
                name="delivery_open_idx",
                condition=Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.SENDING]),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DeliveryStatus.values), name="delivery_status_valid")
        ]

    def __str__(self) -> str:
        return f"delivery {self.pk}"


class Notification(models.Model):
    """A console notification for one user (assignment, escalation, reopen)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20)
    text = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "read_at"], name="notification_unread_idx")]

    def __str__(self) -> str:
        return self.text

"""Ingest: sources and their tokens, the rules applied to incoming records, events, batches and dead letters."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from console.lib.models import TimeStampedModel
from transactions.choices import (
    Channel,
    Criticality,
    DeadLetterStatus,
    EventStatus,
    InterfaceStyle,
    RedactionAction,
    RuleAction,
    TransactionStatus,
)


class SourceScopedQuerySet(models.QuerySet):
    def filter_source(self, source: "IngestSource") -> "SourceScopedQuerySet":
        """Rules of this source plus the rules for every source."""
        return self.filter(Q(source__isnull=True) | Q(source=source))


class IngestSource(TimeStampedModel):
    """A sender of records (a system or a gateway in front of several), authenticated by its tokens."""

    name = models.SlugField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class IngestToken(models.Model):
    """A bearer token of an ingest source; only its SHA-256 is stored, the token is shown once."""

    source = models.ForeignKey(IngestSource, on_delete=models.CASCADE, related_name="tokens")
    prefix = models.CharField(max_length=12, help_text="first characters, to tell tokens apart")
    digest = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.CharField(max_length=200)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.source})"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class SourceAlias(models.Model):
    """Maps a CloudEvents `source` URI (exact, or a prefix ending in *) of one ingest source to a system name."""

    source = models.ForeignKey(IngestSource, on_delete=models.CASCADE, related_name="aliases")
    pattern = models.CharField(max_length=300)
    system = models.CharField(max_length=100)

    class Meta:
        ordering = ["source", "pattern"]
        constraints = [models.UniqueConstraint(fields=["source", "pattern"], name="alias_unique_pattern")]

    def __str__(self) -> str:
        return f"{self.pattern} -> {self.system}"


class ExtractionRule(TimeStampedModel):
    """Takes a business key from a record by JSON path, or marks matching records failed (per source and kind)."""

    source = models.ForeignKey(
        IngestSource, null=True, blank=True, on_delete=models.CASCADE, help_text="empty: every source"
    )
    kind_pattern = models.CharField(max_length=200, default="*", help_text="glob on the kind, e.g. sap.s4.*")
    action = models.CharField(max_length=20, choices=RuleAction.choices, default=RuleAction.BUSINESS_KEY)
    path = models.CharField(max_length=300, blank=True, help_text='e.g. data.SalesOrder or attributes["sap.order"]')
    key_type = models.CharField(max_length=40, blank=True, help_text="order, invoice, customer...")
    description = models.CharField(max_length=300, blank=True)
    position = models.PositiveIntegerField(default=100)
    is_active = models.BooleanField(default=True)

    objects = SourceScopedQuerySet.as_manager()

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(
                condition=~Q(action=RuleAction.BUSINESS_KEY) | (~Q(path="") & ~Q(key_type="")),
                name="extraction_key_rule_has_path_and_type",
            ),
            models.CheckConstraint(condition=Q(action__in=RuleAction.values), name="extraction_rule_action_valid"),
        ]

    def __str__(self) -> str:
        if self.action == RuleAction.MARK_FAILED:
            return f"{self.kind_pattern}: mark failed"
        return f"{self.kind_pattern}: {self.path} -> {self.key_type}"


class RedactionRule(TimeStampedModel):
    """Drops, masks or hashes attributes carrying personal data before anything is stored."""

    source = models.ForeignKey(
        IngestSource, null=True, blank=True, on_delete=models.CASCADE, help_text="empty: every source"
    )
    pattern = models.CharField(max_length=200, help_text="glob on attribute names, e.g. *email* or customer.name")
    action = models.CharField(max_length=10, choices=RedactionAction.choices, default=RedactionAction.MASK)
    is_active = models.BooleanField(default=True)

    objects = SourceScopedQuerySet.as_manager()

    class Meta:
        ordering = ["pattern", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(action__in=RedactionAction.values), name="redaction_action_valid")
        ]

    def __str__(self) -> str:
        return f"{self.action} {self.pattern}"


class IngestBatch(models.Model):
    """One accepted request (or replay): its counts feed feed health; `correlated_at` tells the sweep what is left."""

    source = models.ForeignKey(IngestSource, on_delete=models.PROTECT, related_name="batches")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    received_at = models.DateTimeField(db_index=True)
    accepted = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    correlated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # Feed health: WHERE source_id=? AND received_at >= ? (counts per source over a window).
            models.Index(fields=["source", "received_at"], name="batch_source_time_idx"),
            # The sweep: WHERE correlated_at IS NULL AND accepted > 0 (small partial index).
            models.Index(
                fields=["received_at"],
                name="batch_uncorrelated_idx",
                condition=Q(correlated_at__isnull=True, accepted__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"batch {self.pk} from {self.source_id}"


class Event(models.Model):
    """One ingested record, append-only. On PostgreSQL partitioned by receive time (key: id, received_at)."""

    received_at = models.DateTimeField()
    source = models.ForeignKey(IngestSource, on_delete=models.PROTECT, related_name="+")
    batch = models.ForeignKey(IngestBatch, on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    dedup_key = models.CharField(max_length=600)
    event_id = models.CharField(max_length=200, null=True, blank=True)
    occurred_at = models.DateTimeField()
    system = models.CharField(max_length=100)
    kind = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=EventStatus.choices)
    duration_ms = models.BigIntegerField(null=True, blank=True)
    trace_id = models.CharField(max_length=32, null=True, blank=True)
    span_id = models.CharField(max_length=16, null=True, blank=True)
    parent_span_id = models.CharField(max_length=16, null=True, blank=True)
    links = models.JSONField(default=list, blank=True)
    business_keys = models.JSONField(default=dict, blank=True)
    entity = models.CharField(max_length=50, null=True, blank=True)
    amount = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, null=True, blank=True)
    approval = models.JSONField(null=True, blank=True)
    error = models.JSONField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [
            # Correlation and search by trace: WHERE trace_id = ?.
            models.Index(fields=["trace_id"], name="event_trace_idx", condition=Q(trace_id__isnull=False)),
            # Correlation reads one batch's events: WHERE batch_id = ?.
            models.Index(fields=["batch"], name="event_batch_idx"),
        ]
        constraints = [models.CheckConstraint(condition=Q(status__in=EventStatus.values), name="event_status_valid")]

    def __str__(self) -> str:
        return f"{self.system} {self.kind} ({self.status})"


class IdempotencyKey(models.Model):
    """Keys seen per source: a second delivery finds its key here and is counted as a duplicate."""

    source = models.ForeignKey(IngestSource, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=600)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "key"], name="idempotency_unique_key")]
        indexes = [
            # Retention: DELETE WHERE received_at < ?.
            models.Index(fields=["received_at"], name="idempotency_time_idx"),
        ]

    def __str__(self) -> str:
        return self.key


class DeadLetter(models.Model):
    """A rejected record kept with its reason and raw body, to browse, fix and replay."""

    source = models.ForeignKey(IngestSource, on_delete=models.PROTECT, related_name="dead_letters")
    channel = models.CharField(max_length=20, choices=Channel.choices)
    received_at = models.DateTimeField()
    record_index = models.PositiveIntegerField(null=True, blank=True, help_text="position in its request")
    reason = models.TextField()
    raw = models.JSONField(null=True, blank=True, help_text="the record as received (after redaction)")
    raw_text = models.TextField(blank=True, help_text="an undecodable body, as text")
    status = models.CharField(max_length=10, choices=DeadLetterStatus.choices, default=DeadLetterStatus.PENDING)
    replay_count = models.PositiveIntegerField(default=0)
    last_replayed_at = models.DateTimeField(null=True, blank=True)
    last_replay_outcome = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)
    content_hash = models.CharField(
        max_length=64, null=True, blank=True, help_text="SHA-256 of channel and content; null before deduplication"
    )
    repeats = models.PositiveIntegerField(default=0, help_text="how many more times the same content was rejected")
    last_received_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            # The dead-letter page: WHERE status=? [AND source_id=?] ORDER BY received_at DESC.
            models.Index(fields=["status", "source", "-received_at"], name="deadletter_browse_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=DeadLetterStatus.values), name="deadletter_status_valid"),
            # One pending letter per source and content: the ingest upsert (ON CONFLICT ... WHERE status = 'pending')
            # counts a repeat on it instead of adding a copy. Replayed or discarded letters leave room for a new one.
            models.UniqueConstraint(
                fields=["source", "content_hash"],
                condition=Q(status="pending"),
                name="deadletter_pending_content_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"dead letter {self.pk} ({self.channel})"


class ProcessDefinition(TimeStampedModel):
    """A business process Closeloop recognises (order-to-cash, procure-to-pay...) and the steps it expects."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    correlation_keys = models.JSONField(
        default=list, blank=True, help_text='business key types that link this process\'s events, e.g. ["order"]'
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ProcessStep(models.Model):
    """One expected step of a process: which system does what, and how long after the previous step."""

    process = models.ForeignKey(ProcessDefinition, on_delete=models.CASCADE, related_name="steps")
    position = models.PositiveSmallIntegerField()
    name = models.CharField(max_length=120)
    system = models.CharField(max_length=100, blank=True, help_text="empty: any system")
    kind_pattern = models.CharField(max_length=200, help_text="glob on the event kind, e.g. invoice.posted")
    allowance = models.DurationField(help_text="time allowed after the previous step before the transaction stalls")
    required = models.BooleanField(default=True)
    # Approval controls (compliance lineage): the step needs an approval before the next step of the process happens.
    requires_approval = models.BooleanField(default=False)
    approval_step = models.CharField(
        max_length=120, blank=True, help_text="the approval's step name (e.g. deal-desk); empty: this step's name"
    )
    allowed_approvers = models.JSONField(
        default=list, blank=True, help_text="role names or user names that may approve; empty: anyone"
    )
    approval_opens_case = models.BooleanField(default=False, help_text="a finding on this step opens a control case")

    class Meta:
        ordering = ["process", "position"]
        constraints = [models.UniqueConstraint(fields=["process", "position"], name="process_step_unique_position")]

    def __str__(self) -> str:
        return f"{self.position}. {self.name}"


class Transaction(models.Model):
    """An end-to-end business transaction: the connected events of one process instance, summarised."""

    # No index of its own: txn_process_status_idx starts with process_id.
    process = models.ForeignKey(ProcessDefinition, null=True, blank=True, on_delete=models.SET_NULL, db_index=False)
    status = models.CharField(max_length=12, choices=TransactionStatus.choices, default=TransactionStatus.IN_FLIGHT)
    started_at = models.DateTimeField()
    last_event_at = models.DateTimeField()
    event_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    systems = models.JSONField(default=list, blank=True)
    business_keys = models.JSONField(default=dict, blank=True, help_text="{type: [values]}")
    step_facts = models.JSONField(
        default=dict, blank=True, help_text='{"system|kind": {"status", "first_at", "last_at", "count"}}'
    )
    next_step = models.JSONField(null=True, blank=True)
    next_due_at = models.DateTimeField(null=True, blank=True)
    merged_into = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    version = models.PositiveIntegerField(default=1)
    hops_stale_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="when correlation first changed the events since interface discovery last derived its hops",
    )

    class Meta:
        indexes = [
            # The transactions list: ORDER BY last_event_at DESC, id DESC, optionally WHERE status=?.
            models.Index(fields=["-last_event_at", "-id"], name="txn_recent_idx"),
            models.Index(fields=["status", "-last_event_at", "-id"], name="txn_status_recent_idx"),
            # Home dashboard and process filter: GROUP BY process, status / WHERE process_id=?.
            models.Index(fields=["process", "status"], name="txn_process_status_idx"),
            # The stall sweep: WHERE status='in_flight' AND next_due_at < now.
            models.Index(
                fields=["next_due_at"], name="txn_stall_due_idx", condition=Q(status=TransactionStatus.IN_FLIGHT)
            ),
            # The interface sweep: WHERE hops_stale_since < ? ORDER BY hops_stale_since, holding only the transactions
            # discovery still owes (a handful), not the store.
            models.Index(
                fields=["hops_stale_since", "id"],
                name="txn_hops_stale_idx",
                condition=Q(hops_stale_since__isnull=False),
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(status__in=TransactionStatus.values), name="txn_status_valid")
        ]

    def __str__(self) -> str:
        return f"transaction {self.pk}"


class TransactionEvent(models.Model):
    """An event's membership in a transaction (events are append-only, so membership lives here)."""

    # No index of its own: txn_event_timeline_idx starts with txn_id (one index less to maintain per event).
    txn = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="memberships", db_index=False)
    # The event's id and partition key; no database foreign key, as PostgreSQL's key of events is (id, received_at).
    event_id = models.BigIntegerField(unique=True)
    event_received_at = models.DateTimeField()
    occurred_at = models.DateTimeField()
    system = models.CharField(max_length=100)
    kind = models.CharField(max_length=200)
    status = models.CharField(max_length=10, choices=EventStatus.choices)

    class Meta:
        indexes = [
            # A timeline: WHERE txn_id=? ORDER BY occurred_at.
            models.Index(fields=["txn", "occurred_at"], name="txn_event_timeline_idx"),
            # The classification sweep: WHERE status='error' ORDER BY id DESC LIMIT n.
            models.Index(fields=["-id"], name="txn_event_failed_idx", condition=Q(status=EventStatus.ERROR)),
        ]

    def __str__(self) -> str:
        return f"event {self.event_id} in {self.txn_id}"


class TransactionKey(models.Model):
    """A trace id or business key of a transaction: correlating keys link (unique), broad ones are only searched."""

    txn = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="keys")
    key_type = models.CharField(max_length=40)
    value = models.CharField(max_length=200)
    correlates = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["key_type", "value"], condition=Q(correlates=True), name="txn_key_unique_link"
            ),
        ]
        indexes = [
            # Search by any key value: WHERE value = ? (also the correlation lookup by value).
            models.Index(fields=["value", "key_type"], name="txn_key_value_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.key_type}={self.value}"


class TransactionMerge(models.Model):
    """Two transactions found to be one: the older id survives and the absorbed one redirects to it."""

    survivor = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="merges")
    absorbed = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="+")
    via_key = models.CharField(max_length=250)
    merged_at = models.DateTimeField(auto_now_add=True)
    batch = models.ForeignKey(IngestBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return f"{self.absorbed_id} -> {self.survivor_id}"


class CatalogueEntry(models.Model):
    """The inventory's facts about a discovered system or interface, kept by people (discovery never changes them)."""

    owner_team = models.CharField(max_length=100, blank=True)
    owner_queue = models.SlugField(max_length=60, blank=True, help_text="slug of the queue its cases go to")
    criticality = models.CharField(max_length=10, choices=Criticality.choices, blank=True)
    style = models.CharField(max_length=10, choices=InterfaceStyle.choices, blank=True)
    environment = models.CharField(max_length=40, blank=True, help_text="e.g. production, sandbox")
    data_objects = models.JSONField(default=list, blank=True, help_text='e.g. ["order", "invoice"]')
    notes = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        abstract = True


class System(CatalogueEntry):
    """A system seen in correlated traffic (an event's `system`), the node of the integration map."""

    name = models.CharField(max_length=100, unique=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(criticality__in=["", *Criticality.values]), name="system_criticality_valid"
            ),
            models.CheckConstraint(condition=Q(style__in=["", *InterfaceStyle.values]), name="system_style_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class Interface(CatalogueEntry):
    """A discovered hand-over from one system to another: the edge of the integration map."""

    source = models.ForeignKey(System, on_delete=models.CASCADE, related_name="outgoing")
    # Catalogue: how often traffic is expected; silent for longer raises a `platform` case (exceptions' drift job).
    expected_every = models.DurationField(null=True, blank=True, help_text="e.g. 1d for a daily batch")
    target = models.ForeignKey(System, on_delete=models.CASCADE, related_name="incoming")
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    # When discovery first stored the pair (first_seen_at is traffic time): a pair discovered from traffic far older
    # than its discovery came with history being loaded or rebuilt, not with a new interface going live.
    discovered_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["source__name", "target__name"]
        constraints = [
            models.UniqueConstraint(fields=["source", "target"], name="interface_unique_pair"),
            models.CheckConstraint(
                condition=Q(criticality__in=["", *Criticality.values]), name="interface_criticality_valid"
            ),
            models.CheckConstraint(condition=Q(style__in=["", *InterfaceStyle.values]), name="interface_style_valid"),
        ]
        indexes = [
            # A system's incoming interfaces: WHERE target_id=? (outgoing ones use the unique pair's index).
            models.Index(fields=["target"], name="interface_target_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.source} -> {self.target}"


class InterfaceHop(models.Model):
    """One hand-over inside a transaction, re-derived whenever the transaction changes; the rollups' raw material."""

    interface = models.ForeignKey(Interface, on_delete=models.CASCADE, related_name="+", db_index=False)
    # No index of its own: interface_hop_txn_idx serves the per-transaction replace and the click-through filter.
    txn = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField(help_text="local day (DASHBOARD_TIME_ZONE) of the target's start")
    at = models.DateTimeField()
    latency_ms = models.BigIntegerField()
    error = models.BooleanField(default=False)
    duplicate = models.BooleanField(default=False)
    late = models.BooleanField(default=False)
    kind = models.CharField(max_length=200)
    channel = models.CharField(max_length=20, blank=True)
    via = models.CharField(max_length=10)

    class Meta:
        indexes = [
            # Replacing a transaction's hops: DELETE WHERE txn_id IN (...).
            models.Index(fields=["txn"], name="interface_hop_txn_idx"),
            # A day's rollup: WHERE day=?; the map's click-through: WHERE interface_id=? AND day BETWEEN ? AND ?.
            models.Index(fields=["day", "interface"], name="interface_hop_day_idx"),
            models.Index(fields=["interface", "day"], name="interface_hop_iface_day_idx"),
        ]

    def __str__(self) -> str:
        return f"hop {self.interface_id} in {self.txn_id}"


class InterfaceDaily(models.Model):
    """One interface's figures for one local day, rebuilt whole from its hops (idempotent)."""

    interface = models.ForeignKey(Interface, on_delete=models.CASCADE, related_name="days", db_index=False)
    day = models.DateField()
    volume = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    late = models.PositiveIntegerField(default=0)
    latency_p50_ms = models.BigIntegerField(null=True, blank=True)
    latency_p95_ms = models.BigIntegerField(null=True, blank=True)
    latency_histogram = models.JSONField(
        default=list,
        blank=True,
        help_text="hop latencies as [first bucket, hops, hops in the next, ...] (transactions.interfaces)",
    )
    kinds = models.JSONField(default=dict, blank=True, help_text="{kind: hops}")
    channels = models.JSONField(default=dict, blank=True, help_text="{channel: hops}")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["interface", "day"], name="interface_daily_unique_day")]
        indexes = [
            # The map and the interface API: WHERE day BETWEEN ? AND ?; the rebuild's DELETE WHERE day IN (...).
            models.Index(fields=["day"], name="interface_daily_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.interface_id} {self.day}"


class InterfaceMonthly(models.Model):
    """One interface's figures for one calendar month of local days: the sum of its daily rows, rebuilt whole from them
    whenever one of its days is, so that a long range reads a dozen rows per interface instead of hundreds."""

    interface = models.ForeignKey(Interface, on_delete=models.CASCADE, related_name="+", db_index=False)
    month = models.DateField(help_text="first local day of the month")
    volume = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    late = models.PositiveIntegerField(default=0)
    latency_histogram = models.JSONField(default=list, blank=True, help_text="the days' histograms added up")
    kinds = models.JSONField(default=dict, blank=True, help_text="{kind: hops}")
    channels = models.JSONField(default=dict, blank=True, help_text="{channel: hops}")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["interface", "month"], name="interface_monthly_unique_month")]
        indexes = [
            # A range's whole months: WHERE month IN (...); the month's rebuild: DELETE WHERE month = ?.
            models.Index(fields=["month"], name="interface_monthly_month_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.interface_id} {self.month:%Y-%m}"


class InterfaceDirtyDay(models.Model):
    """A local day whose hops changed since its rollup was built: the record of what the refresh still owes."""

    day = models.DateField(unique=True)
    marked_at = models.DateTimeField()

    def __str__(self) -> str:
        return str(self.day)

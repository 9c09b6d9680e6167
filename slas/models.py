"""Business SLAs: calendars, SLA definitions and their clocks per transaction, volume and evidence monitors."""

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q

from console.lib.models import TimeStampedModel
from exceptions.models import Case, Category, Queue
from slas.calendars import CalendarError, WorkCalendar, parse_working_hours
from slas.choices import (
    DEFAULT_BREACH_CATEGORY,
    LIVE_CLOCK_STATUSES,
    ClockStatus,
    EvidenceCheckStatus,
    EvidenceDirection,
    VolumeMode,
)
from slas.evaluation import Matcher, duration_text, parse_pause_conditions
from transactions.choices import EventStatus
from transactions.models import ProcessDefinition, Transaction


class BusinessCalendar(TimeStampedModel):
    """Working days and hours in a time zone, plus holidays: what "business time" means for a region or entity."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    time_zone = models.CharField(max_length=64, help_text="IANA name, e.g. Europe/Berlin")
    working_hours = models.JSONField(
        default=dict,
        help_text='local wall-clock intervals per weekday, e.g. {"mon": [["08:00", "12:00"], ["13:00", "17:00"]]}',
    )
    description = models.CharField(max_length=300, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            WorkCalendar.from_data(time_zone=self.time_zone, working_hours=self.working_hours)
        except CalendarError as exc:
            field = "time_zone" if "time zone" in str(exc) else "working_hours"
            raise ValidationError({field: str(exc)}) from exc

    def as_work_calendar(self, holidays: list | None = None) -> WorkCalendar:
        """The pure calendar; `holidays` defaults to this calendar's stored dates (one query)."""
        if holidays is None:
            holidays = list(self.holidays.values_list("date", flat=True))
        return WorkCalendar(
            time_zone=self.time_zone, weekly=parse_working_hours(self.working_hours), holidays=frozenset(holidays)
        )


class Holiday(models.Model):
    """A non-working local date of one calendar."""

    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.CASCADE, related_name="holidays")
    date = models.DateField()
    name = models.CharField(max_length=120, blank=True)

    class Meta:
        ordering = ["calendar", "date"]
        # The unique constraint's index also serves the calendar's holiday list (WHERE calendar_id=? ORDER BY date).
        constraints = [models.UniqueConstraint(fields=["calendar", "date"], name="holiday_unique_date")]

    def __str__(self) -> str:
        return f"{self.date} {self.name}"


class SlaDefinition(TimeStampedModel):
    """A business promise: from a start event to a stop event on a transaction, within a target business time."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    process = models.ForeignKey(
        ProcessDefinition,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="only transactions of this process; empty: any transaction with the start event",
    )
    # Start and stop events: system and kind are globs (a|b for alternatives), status ok/error or empty for any.
    start_system = models.CharField(max_length=100, blank=True, help_text="glob; empty: any system")
    start_kind = models.CharField(max_length=200, help_text="glob on the event kind, a|b for alternatives")
    start_status = models.CharField(max_length=10, blank=True, default="ok", help_text="ok, error or empty: any")
    start_key_type = models.CharField(max_length=40, blank=True, help_text="the event must carry this business key")
    stop_system = models.CharField(max_length=100, blank=True, help_text="glob; empty: any system")
    stop_kind = models.CharField(max_length=200, help_text="glob on the event kind, a|b for alternatives")
    stop_status = models.CharField(max_length=10, blank=True, default="ok", help_text="ok, error or empty: any")
    stop_key_type = models.CharField(max_length=40, blank=True, help_text="the event must carry this business key")
    pause_conditions = models.JSONField(
        default=list,
        blank=True,
        help_text='e.g. [{"case_category": "data_quality"}, {"event_kind": "vendor.query", "until_kind": "vendor.*"}]',
    )
    target = models.DurationField(help_text="business time from start to stop")
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="sla_definitions")
    at_risk_percent = models.PositiveSmallIntegerField(default=80, help_text="at risk once this share is used")
    breach_queue = models.ForeignKey(
        Queue,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="empty: routed by the routing rules",
    )
    breach_category_slug = models.SlugField(max_length=40, default=DEFAULT_BREACH_CATEGORY)
    is_active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(at_risk_percent__gte=1, at_risk_percent__lte=100), name="sla_definition_at_risk_range"
            ),
            models.CheckConstraint(condition=Q(target__gt=timedelta(0)), name="sla_definition_target_positive"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def start_matcher(self) -> Matcher:
        return Matcher(self.start_system, self.start_kind, self.start_status, self.start_key_type)

    @property
    def stop_matcher(self) -> Matcher:
        return Matcher(self.stop_system, self.stop_kind, self.stop_status, self.stop_key_type)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        for name in ("start_status", "stop_status"):
            if getattr(self, name) not in ("", *EventStatus.values):
                errors[name] = "ok, error, or empty for any status"
        try:
            parse_pause_conditions(self.pause_conditions)
        except ValueError as exc:
            errors["pause_conditions"] = str(exc)
        if self.target is not None and self.target <= timedelta(0):
            errors["target"] = "the target must be a positive duration"
        if self.breach_category_slug and not Category.objects.filter(slug=self.breach_category_slug).exists():
            errors["breach_category_slug"] = f"no case category {self.breach_category_slug!r}"
        if self.start_kind and self.stop_kind and not errors and self.start_matcher.overlaps(self.stop_matcher):
            errors["stop_kind"] = (
                f"an event matching the stop ({self.stop_matcher.describe()}) would also match the start "
                f"({self.start_matcher.describe()}): the clock would stop on the event that starts it"
            )
        if errors:
            raise ValidationError(errors)


# At risk now: at risk, or paused after becoming at risk (the warning still stands when the clock resumes).
AT_RISK_NOW = Q(status=ClockStatus.AT_RISK) | Q(status=ClockStatus.PAUSED, at_risk_at__isnull=False)


class SlaClock(models.Model):
    """One definition's clock on one transaction: business time used, left, paused, and its forecast."""

    # No index of its own: slaclock_definition_idx and the unique constraint start with definition_id.
    definition = models.ForeignKey(SlaDefinition, on_delete=models.CASCADE, related_name="clocks", db_index=False)
    # No index of its own: slaclock_txn_idx starts with txn_id.
    txn = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="+", db_index=False)
    status = models.CharField(max_length=10, choices=ClockStatus.choices, default=ClockStatus.RUNNING)
    entity = models.CharField(max_length=50, blank=True, help_text="legal entity of the start event")
    started_at = models.DateTimeField(help_text="when the start event occurred")
    # Event ids (no foreign keys: events are partitioned and append-only).
    start_event_id = models.BigIntegerField()
    stop_event_id = models.BigIntegerField(null=True, blank=True)
    pause_event_id = models.BigIntegerField(null=True, blank=True, help_text="the event that paused it, if any")
    stopped_at = models.DateTimeField(null=True, blank=True, help_text="when the stop event occurred")
    paused_since = models.DateTimeField(null=True, blank=True, help_text="start of the pause in force, if any")
    pause_reason = models.CharField(max_length=200, blank=True)
    pauses = models.JSONField(
        default=list,
        blank=True,
        help_text='every pause: [{"from": iso, "to": iso or null, "reason": "...", "source": "event" or "case"}]',
    )
    paused_seconds = models.BigIntegerField(default=0, help_text="business seconds spent paused (finished pauses)")
    elapsed_seconds = models.BigIntegerField(default=0, help_text="business seconds counted against the target")
    remaining_seconds = models.BigIntegerField(default=0, help_text="negative once breached")
    due_at = models.DateTimeField(null=True, blank=True, help_text="business-time deadline (moves with pauses)")
    waiting_for_step = models.CharField(max_length=120, blank=True)
    expected_finish_at = models.DateTimeField(null=True, blank=True)
    forecast = models.JSONField(
        null=True,
        blank=True,
        help_text='p90 seconds of the awaited step and of the steps after it: {"since", "step_p90", "after_p90"}',
    )
    at_risk_reason = models.CharField(max_length=300, blank=True)
    at_risk_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    met_at = models.DateTimeField(null=True, blank=True)
    breach_case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    evaluated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["definition", "txn"], name="slaclock_unique_definition_txn"),
            models.CheckConstraint(condition=Q(status__in=ClockStatus.values), name="slaclock_status_valid"),
        ]
        indexes = [
            # The beat pass: WHERE status IN (running, paused, at_risk) ORDER BY id (only live clocks are indexed).
            models.Index(fields=["id"], name="slaclock_live_idx", condition=Q(status__in=LIVE_CLOCK_STATUSES)),
            # A transaction's clocks (its page, evaluation after correlation, merges): WHERE txn_id IN (...).
            models.Index(fields=["txn", "status"], name="slaclock_txn_idx"),
            # The clocks page and API: WHERE definition_id=? [AND status=?] ORDER BY started_at DESC, id DESC.
            models.Index(fields=["definition", "status", "-started_at", "-id"], name="slaclock_definition_idx"),
            # The clocks page and API without a definition filter: ORDER BY started_at DESC, id DESC.
            models.Index(fields=["-started_at", "-id"], name="slaclock_recent_idx"),
            # "At risk now" on the SLA dashboard, least time left first: the top rows straight from the index.
            models.Index(fields=["remaining_seconds", "id"], name="slaclock_at_risk_idx", condition=AT_RISK_NOW),
        ]

    def __str__(self) -> str:
        return f"{self.definition_id} on {self.txn_id}: {self.status}"

    @property
    def remaining_label(self) -> str:
        """Business time left, as people read it (1 h 05 min, 2 d 3 h)."""
        return duration_text(max(self.remaining_seconds, 0))

    @property
    def elapsed_label(self) -> str:
        return duration_text(self.elapsed_seconds)

    @property
    def paused_label(self) -> str:
        return duration_text(self.paused_seconds)


class VolumeMonitor(TimeStampedModel):
    """An expected count of matching events per window or by a daily deadline: silence (or a flood) becomes a case."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    system = models.CharField(max_length=100, help_text="glob on the event's system")
    kind = models.CharField(max_length=200, default="*", help_text="glob on the event kind, a|b for alternatives")
    entity = models.CharField(max_length=50, blank=True, help_text="glob on the legal entity; empty: any")
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="volume_monitors")
    mode = models.CharField(max_length=20, choices=VolumeMode.choices, default=VolumeMode.WINDOW)
    window = models.DurationField(null=True, blank=True, help_text="window mode: count over this sliding window")
    deadline_time = models.TimeField(null=True, blank=True, help_text="daily mode: local time on each working day")
    min_count = models.PositiveIntegerField(default=1)
    max_count = models.PositiveIntegerField(null=True, blank=True)
    working_hours_only = models.BooleanField(default=True, help_text="evaluate only during working time")
    queue = models.ForeignKey(
        Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="empty: routing rules"
    )
    category_slug = models.SlugField(max_length=40, default="platform")
    is_active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    # Evaluation state.
    last_evaluated_at = models.DateTimeField(null=True, blank=True)
    currently_violated = models.BooleanField(default=False)
    last_count = models.PositiveIntegerField(null=True, blank=True)
    violated_since = models.DateTimeField(null=True, blank=True)
    case = models.ForeignKey(
        Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="the open violation's case"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(mode__in=VolumeMode.values), name="volume_mode_valid"),
            models.CheckConstraint(
                condition=(Q(mode=VolumeMode.WINDOW, window__isnull=False, window__gt=timedelta(0)))
                | Q(mode=VolumeMode.DAILY_DEADLINE, deadline_time__isnull=False),
                name="volume_mode_has_window_or_deadline",
            ),
            models.CheckConstraint(
                condition=Q(max_count__isnull=True) | Q(max_count__gte=models.F("min_count")),
                name="volume_max_not_below_min",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class EvidenceMonitor(TimeStampedModel):
    """Evidence that must precede or follow a trigger event within a business-time window, or a control case opens."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    process = models.ForeignKey(
        ProcessDefinition, null=True, blank=True, on_delete=models.PROTECT, related_name="+", help_text="empty: any"
    )
    trigger_system = models.CharField(max_length=100, blank=True, help_text="glob; empty: any system")
    trigger_kind = models.CharField(max_length=200, help_text="glob on the event kind, a|b for alternatives")
    trigger_status = models.CharField(max_length=10, blank=True, default="ok", help_text="ok, error or empty: any")
    evidence_system = models.CharField(max_length=100, blank=True, help_text="glob; empty: any system")
    evidence_kind = models.CharField(max_length=200, blank=True, help_text="glob on the evidence event's kind")
    evidence_approval_step = models.CharField(
        max_length=100, blank=True, help_text="or: an event carrying an approval of this step"
    )
    direction = models.CharField(max_length=10, choices=EvidenceDirection.choices, default=EvidenceDirection.AFTER)
    window = models.DurationField(help_text="business time between trigger and evidence")
    calendar = models.ForeignKey(BusinessCalendar, on_delete=models.PROTECT, related_name="evidence_monitors")
    queue = models.ForeignKey(
        Queue, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="empty: routing rules"
    )
    category_slug = models.SlugField(max_length=40, default=DEFAULT_BREACH_CATEGORY)
    is_active = models.BooleanField(default=True)
    version = models.PositiveIntegerField(default=1)
    last_evaluated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(direction__in=EvidenceDirection.values), name="evidence_direction_valid"
            ),
            models.CheckConstraint(condition=Q(window__gt=timedelta(0)), name="evidence_window_positive"),
            models.CheckConstraint(
                condition=~Q(evidence_kind="") | ~Q(evidence_approval_step=""), name="evidence_has_matcher"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class EvidenceCheck(models.Model):
    """One trigger event an evidence monitor saw: waiting for its evidence, satisfied, or missing (a control case)."""

    monitor = models.ForeignKey(EvidenceMonitor, on_delete=models.CASCADE, related_name="checks")
    # No index of its own: evidencecheck_txn_idx starts with txn_id.
    txn = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="+", db_index=False)
    trigger_event_id = models.BigIntegerField(help_text="no foreign key: events are partitioned and append-only")
    trigger_at = models.DateTimeField()
    trigger_kind = models.CharField(max_length=200)
    entity = models.CharField(max_length=50, blank=True)
    due_at = models.DateTimeField(help_text="evidence is missing once this passes without it")
    status = models.CharField(max_length=10, choices=EvidenceCheckStatus.choices, default=EvidenceCheckStatus.PENDING)
    evidence_event_id = models.BigIntegerField(null=True, blank=True)
    evidence_at = models.DateTimeField(null=True, blank=True)
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["monitor", "trigger_event_id"], name="evidencecheck_unique_trigger"),
            models.CheckConstraint(
                condition=Q(status__in=EvidenceCheckStatus.values), name="evidencecheck_status_valid"
            ),
        ]
        indexes = [
            # The periodic pass: WHERE status='pending' AND due_at <= now ORDER BY due_at (pending checks only).
            models.Index(
                fields=["due_at"], name="evidencecheck_due_idx", condition=Q(status=EvidenceCheckStatus.PENDING)
            ),
            # After correlation, a transaction's checks: WHERE txn_id IN (...) [AND status=?].
            models.Index(fields=["txn", "status"], name="evidencecheck_txn_idx"),
            # A monitor's page: WHERE monitor_id=? ORDER BY trigger_at DESC.
            models.Index(fields=["monitor", "-trigger_at"], name="evidencecheck_monitor_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.monitor_id} on {self.txn_id}: {self.status}"


# ---- Dashboards: daily rollups and ROI assumptions ------------------------------------------------------------------
# Dashboards read these pre-aggregated rows, never the event or clock history, so a page costs the same with a year
# of data as with a week. `slas.services.rollups` rebuilds a day by deleting and re-inserting its rows.


class RollupMetric(models.TextChoices):
    SLA_CLOCKS = "sla_clocks", "SLA clocks closed (met or breached)"
    TXN_STARTED = "txn_started", "Transactions started (auto-correlated across systems)"
    TXN_COMPLETED = "txn_completed", "Transactions completed (with or without a case)"
    EXCEPTIONS = "exceptions", "Exception occurrences (auto-classified or not)"
    CASES_RESOLVED = "cases_resolved", "Cases resolved (time to resolve)"
    REPLAYS = "replays", "Replays finished (succeeded or failed)"
    INVOICE_CYCLE = "invoice_cycle", "Contract approved to invoice posted"
    PAYMENT_SYNC = "payment_sync", "Payment received to payment applied in the ERP"
    DSO = "dso", "Invoice posted to payment received"
    EVIDENCE = "evidence", "Invoice posted to control evidence captured"


class DailyRollup(models.Model):
    """Counts, sums and duration samples of one metric for one local day and one combination of dimensions."""

    day = models.DateField(help_text="local day in DASHBOARD_TIME_ZONE")
    metric = models.CharField(max_length=20, choices=RollupMetric.choices)
    # Dimensions; a metric leaves the ones it does not use empty.
    process = models.CharField(max_length=60, blank=True, help_text="process definition slug")
    entity = models.CharField(max_length=50, blank=True)
    definition = models.ForeignKey(SlaDefinition, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    system = models.CharField(max_length=100, blank=True)
    category = models.CharField(max_length=40, blank=True, help_text="taxonomy category slug")
    queue = models.CharField(max_length=60, blank=True, help_text="queue slug")
    step = models.CharField(max_length=120, blank=True, help_text="process step (SLA breaches: the awaited step)")
    # Measures.
    count = models.PositiveIntegerField(default=0)
    good = models.PositiveIntegerField(default=0, help_text="met, touchless, auto-classified, auto-correlated, ok")
    bad = models.PositiveIntegerField(default=0, help_text="breached, with a case, failed")
    total_seconds = models.BigIntegerField(default=0)
    samples = models.JSONField(default=list, blank=True, help_text="durations in seconds, for percentiles")

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(metric__in=RollupMetric.values), name="rollup_metric_valid")]
        indexes = [
            # Every dashboard figure: WHERE metric=? AND day BETWEEN ? AND ?; the rebuild's DELETE WHERE day IN (...).
            models.Index(fields=["metric", "day"], name="rollup_metric_day_idx"),
            models.Index(fields=["day"], name="rollup_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.metric} {self.day}"


class RoiAssumption(TimeStampedModel):
    """A manager-set figure an ROI KPI is computed with (minutes saved per item, evidence window), audited on change."""

    key = models.SlugField(max_length=60, unique=True)
    label = models.CharField(max_length=160)
    value = models.DecimalField(max_digits=12, decimal_places=2)
    unit = models.CharField(max_length=30)
    help_text = models.CharField(max_length=300, blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["key"]
        constraints = [models.CheckConstraint(condition=Q(value__gte=0), name="roi_assumption_not_negative")]

    def __str__(self) -> str:
        return f"{self.label}: {self.value} {self.unit}"

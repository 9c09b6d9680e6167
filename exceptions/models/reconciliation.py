"""Cross-system reconciliation (issue 17), what each field means.

`ReconciliationRule`: `name`; `process` (optional: only
transactions of that process definition are checked); `kind` is `compare` (the fact at `left_path` of the latest ok
event matching `left_system`/`left_kind` against the fact at `right_path` of the latest ok event matching
`right_system`/`right_kind`, in the same transaction) or `unique` (at most one ok event matching the left side per
value of `left_path` within the value of `scope_path`, across the whole store, through `ReconciliationKey`). Systems
and kinds are globs (`a|b` alternatives, empty: any); paths are JSON-path-like into the event's canonical fields
(`amount`, `currency`, `entity`, `business_keys.<type>`, `approval.<name>`, `attributes.<name>` or
`attributes["dotted.name"]`) or the transaction's keys (`txn_keys.<type>[0]`), with `a|b` alternatives where the
first one present wins; `left_currency_path`/`right_currency_path` say where each side's currency is (currency-aware
comparison). `comparison` is equal, normalised (case, whitespace, leading zeros), absolute (|left - right| <=
tolerance), relative (|left - right| <= tolerance x |left|) or currency (left converted into the right side's currency
with the `FxRate` table, then absolute; no rate: result `error`); `tolerance` >= 0; `mapping` (a `ValueMapping`,
e.g. CRM legal entity -> ERP company code) translates the left value before comparing; `severity`, `is_active`,
`position` (evaluation and display order), `description`. `ReconciliationResult` is one verdict per (rule,
transaction, `subject`; the subject is "" for compare rules and the normalised value for unique ones): `status`
(matched, mismatched, incomplete: a side is missing yet, error: e.g. no FX rate), `reason` (one line), both values
and the events and systems they came from, `entity`, `amount_at_stake` and `currency` (the difference, or the
duplicate's amount), `occurred_at` (the latest event considered: time range and weekly figures), `evaluated_at`,
`case` (the data_quality case of a mismatch) and `signal_key` (the occurrence recorded for the current mismatch).
`ReconciliationKey` is the indexed lookup behind unique rules: one row per (rule, event) with its normalised value.
`ValueMapping.entries` is {from: to}, matched after normalisation; `FxRate` says 1 `base_currency` = `rate`
`quote_currency` from `valid_from` on (the inverse pair is derived).
"""

from django.db import models
from django.db.models import Q

from console.lib.models import TimeStampedModel
from exceptions.choices import Comparison, ReconciliationKind, ReconciliationStatus, Severity
from exceptions.models.cases import Case
from transactions.models import ProcessDefinition, Transaction


class ValueMapping(TimeStampedModel):
    """A translation table applied to a rule's left value before comparing (CRM legal entity -> ERP company code)."""

    slug = models.SlugField(max_length=60, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    entries = models.JSONField(default=dict, blank=True, help_text='{"from": "to"}, e.g. {"DE01": "1010"}')

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FxRate(TimeStampedModel):
    """A configured exchange rate: 1 base_currency = rate quote_currency from valid_from on."""

    base_currency = models.CharField(max_length=3)
    quote_currency = models.CharField(max_length=3)
    rate = models.DecimalField(max_digits=20, decimal_places=10)
    valid_from = models.DateField()

    class Meta:
        ordering = ["base_currency", "quote_currency", "-valid_from"]
        constraints = [
            models.UniqueConstraint(fields=["base_currency", "quote_currency", "valid_from"], name="fx_rate_unique"),
            models.CheckConstraint(condition=Q(rate__gt=0), name="fx_rate_positive"),
        ]

    def __str__(self) -> str:
        return f"1 {self.base_currency} = {self.rate} {self.quote_currency} from {self.valid_from}"


class ReconciliationRule(TimeStampedModel):
    """A business fact that must agree across systems (compare), or must not repeat (unique)."""

    position = models.PositiveIntegerField(default=100)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    process = models.ForeignKey(
        ProcessDefinition, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", help_text="empty: any"
    )
    kind = models.CharField(max_length=10, choices=ReconciliationKind.choices, default=ReconciliationKind.COMPARE)
    left_system = models.CharField(max_length=100, blank=True, help_text="glob, empty: any system")
    left_kind = models.CharField(max_length=200, help_text="glob on the event kind, a|b for alternatives")
    left_path = models.CharField(max_length=500, help_text="e.g. amount or attributes.data.TotalNetAmount; a|b")
    left_currency_path = models.CharField(max_length=300, blank=True, default="currency")
    right_system = models.CharField(max_length=100, blank=True, help_text="glob, empty: any system")
    right_kind = models.CharField(max_length=200, blank=True, help_text="compare rules: glob on the event kind")
    right_path = models.CharField(max_length=500, blank=True, help_text="compare rules: where the other fact is")
    right_currency_path = models.CharField(max_length=300, blank=True, default="currency")
    scope_path = models.CharField(
        max_length=500, blank=True, help_text="unique rules: the value is unique within this one (e.g. the supplier)"
    )
    comparison = models.CharField(max_length=12, choices=Comparison.choices, default=Comparison.EQUAL)
    tolerance = models.DecimalField(max_digits=20, decimal_places=6, default=0)
    mapping = models.ForeignKey(
        ValueMapping, null=True, blank=True, on_delete=models.PROTECT, related_name="rules", help_text="left value"
    )
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=ReconciliationKind.values), name="recon_rule_kind_valid"),
            models.CheckConstraint(condition=Q(comparison__in=Comparison.values), name="recon_rule_comparison_valid"),
            models.CheckConstraint(condition=Q(tolerance__gte=0), name="recon_rule_tolerance_not_negative"),
            models.CheckConstraint(condition=Q(severity__in=Severity.values), name="recon_rule_severity_valid"),
        ]

    def __str__(self) -> str:
        return self.name


class ReconciliationResult(models.Model):
    """The verdict of one rule on one transaction (and subject): matched, mismatched, incomplete or error."""

    rule = models.ForeignKey(ReconciliationRule, on_delete=models.CASCADE, related_name="results")
    # No index of its own: recon_result_unique starts with txn_id.
    txn = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="+", db_index=False)
    subject = models.CharField(max_length=300, blank=True, default="")
    status = models.CharField(max_length=12, choices=ReconciliationStatus.choices)
    reason = models.CharField(max_length=300, blank=True)
    left_value = models.CharField(max_length=300, blank=True)
    right_value = models.CharField(max_length=300, blank=True)
    left_event_id = models.BigIntegerField(null=True, blank=True, help_text="no FK: events are partitioned")
    right_event_id = models.BigIntegerField(null=True, blank=True)
    left_system = models.CharField(max_length=100, blank=True)
    right_system = models.CharField(max_length=100, blank=True)
    entity = models.CharField(max_length=50, blank=True)
    amount_at_stake = models.DecimalField(max_digits=20, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    occurred_at = models.DateTimeField()
    evaluated_at = models.DateTimeField()
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    signal_key = models.CharField(max_length=200, blank=True)

    class Meta:
        indexes = [
            # The results list and the page: WHERE rule_id=? [AND status=?] AND occurred_at in a range.
            models.Index(fields=["rule", "status", "occurred_at"], name="recon_result_rule_idx"),
            # The list without a rule, newest first: ORDER BY occurred_at DESC, id DESC (cursor pagination).
            models.Index(fields=["-occurred_at", "-id"], name="recon_result_recent_idx"),
            # Open mismatches with their amounts: WHERE status='mismatched' ORDER BY occurred_at.
            models.Index(
                fields=["occurred_at"],
                name="recon_result_mismatch_idx",
                condition=Q(status=ReconciliationStatus.MISMATCHED),
            ),
        ]
        constraints = [
            # Idempotency: one verdict per rule, transaction and subject (WHERE txn_id=? AND rule_id=?).
            models.UniqueConstraint(fields=["txn", "rule", "subject"], name="recon_result_unique"),
            models.CheckConstraint(
                condition=Q(status__in=ReconciliationStatus.values), name="recon_result_status_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.status}: rule {self.rule_id} on transaction {self.txn_id}"


class ReconciliationKey(models.Model):
    """One event's normalised value under a unique rule: the indexed lookup that finds a duplicate anywhere."""

    rule = models.ForeignKey(ReconciliationRule, on_delete=models.CASCADE, related_name="+")
    value = models.CharField(max_length=300)
    txn = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="+")
    event_id = models.BigIntegerField()
    occurred_at = models.DateTimeField()
    amount = models.DecimalField(max_digits=20, decimal_places=4, null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True)
    system = models.CharField(max_length=100, blank=True)
    entity = models.CharField(max_length=50, blank=True)

    class Meta:
        indexes = [
            # Duplicates of a value: WHERE rule_id=? AND value IN (...).
            models.Index(fields=["rule", "value"], name="recon_key_value_idx"),
        ]
        constraints = [
            # Recording an event's value is idempotent (ON CONFLICT (rule_id, event_id)).
            models.UniqueConstraint(fields=["rule", "event_id"], name="recon_key_unique_event"),
        ]

    def __str__(self) -> str:
        return f"{self.value} (rule {self.rule_id})"


class ReconciliationDaily(models.Model):
    """One rule's verdicts for one local day (DASHBOARD_TIME_ZONE) of their events, per system pair and entity,
    rebuilt whole from the day's results (idempotent): what /reconciliation/ sums instead of scanning results."""

    day = models.DateField()
    rule = models.ForeignKey(ReconciliationRule, on_delete=models.CASCADE, related_name="+", db_index=False)
    left_system = models.CharField(max_length=100, blank=True)
    right_system = models.CharField(max_length=100, blank=True)
    entity = models.CharField(max_length=50, blank=True)
    matched = models.PositiveIntegerField(default=0)
    mismatched = models.PositiveIntegerField(default=0)
    incomplete = models.PositiveIntegerField(default=0)
    error = models.PositiveIntegerField(default=0)
    amount_at_stake = models.DecimalField(max_digits=20, decimal_places=2, default=0, help_text="of the mismatches")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "rule", "left_system", "right_system", "entity"], name="recon_daily_unique_cell"
            )
        ]
        # The page's WHERE day BETWEEN ? AND ? and the rebuild's DELETE WHERE day=? use the unique constraint's index.

    def __str__(self) -> str:
        return f"rule {self.rule_id} on {self.day}"


class ReconciliationReconciledDaily(models.Model):
    """Transactions whose every result is a match, counted on the local day of their latest result: the ROI
    dashboard's "manual reconciliation avoided", rebuilt whole per day like `ReconciliationDaily`."""

    day = models.DateField(unique=True)
    transactions = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.transactions} on {self.day}"


class ReconciliationDirtyDay(models.Model):
    """A local day whose results changed since its rollups were built: what the refresh still owes, and the days the
    page still reads from the results themselves."""

    day = models.DateField(unique=True)
    marked_at = models.DateTimeField()

    def __str__(self) -> str:
        return str(self.day)

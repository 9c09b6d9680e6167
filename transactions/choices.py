from django.db import models


class Channel(models.TextChoices):
    NATIVE = "native", "Native events API"
    OTLP_TRACES = "otlp_traces", "OTLP traces"
    OTLP_LOGS = "otlp_logs", "OTLP logs"
    CLOUDEVENTS = "cloudevents", "CloudEvents"


class EventStatus(models.TextChoices):
    OK = "ok", "OK"
    ERROR = "error", "Error"


class RuleAction(models.TextChoices):
    BUSINESS_KEY = "business_key", "Extract a business key"
    MARK_FAILED = "mark_failed", "Mark the record failed"


class RedactionAction(models.TextChoices):
    DROP = "drop", "Drop"
    MASK = "mask", "Mask"
    HASH = "hash", "Hash (keeps equal values joinable)"


class DeadLetterStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    REPLAYED = "replayed", "Replayed"
    DISCARDED = "discarded", "Discarded"


class TransactionStatus(models.TextChoices):
    IN_FLIGHT = "in_flight", "In flight"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    STALLED = "stalled", "Stalled"
    # Completed after a failure that a later attempt made good (the source retried): finished, but not touchless.
    RECOVERED = "recovered", "Recovered"
    MERGED = "merged", "Merged into another"


# Transactions that reached the end of their process, with or without a failure on the way.
COMPLETED_STATUSES = (TransactionStatus.COMPLETED, TransactionStatus.RECOVERED)


# Keys that many transactions share (one customer has thousands of orders): searchable, never a link.
BROAD_KEY_TYPES = frozenset({"customer", "entity", "legal_entity", "company_code", "vendor", "supplier", "account"})
# Which key types link events when no process definition says otherwise (an empty, freshly migrated database).
DEFAULT_CORRELATING_KEY_TYPES = frozenset(
    {"contract", "order", "invoice", "payment", "journal", "purchase_order", "supplier_invoice", "evidence", "key"}
)


class Criticality(models.TextChoices):
    """How much a failure of a system or interface hurts (the inventory's "failure impact")."""

    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class InterfaceStyle(models.TextChoices):
    """How an interface hands data over."""

    API = "api", "API"
    EVENT = "event", "Event"
    BATCH = "batch", "Batch"
    FILE = "file", "File"

from django.db import models


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


class CaseStatus(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    WAITING = "waiting", "Waiting"
    RESOLVED = "resolved", "Resolved"
    IGNORED = "ignored", "Ignored"


# Which moves an operator may make; a recurrence reopens resolved and snoozed cases on its own.
CASE_TRANSITIONS: dict[str, set[str]] = {
    CaseStatus.OPEN: {CaseStatus.IN_PROGRESS, CaseStatus.WAITING, CaseStatus.RESOLVED, CaseStatus.IGNORED},
    CaseStatus.IN_PROGRESS: {CaseStatus.OPEN, CaseStatus.WAITING, CaseStatus.RESOLVED, CaseStatus.IGNORED},
    CaseStatus.WAITING: {CaseStatus.OPEN, CaseStatus.IN_PROGRESS, CaseStatus.RESOLVED, CaseStatus.IGNORED},
    CaseStatus.RESOLVED: {CaseStatus.OPEN},
    CaseStatus.IGNORED: {CaseStatus.OPEN},
}
ACTIVE_STATUSES = (CaseStatus.OPEN, CaseStatus.IN_PROGRESS, CaseStatus.WAITING)

# 1 is the most urgent.
PRIORITIES = ((1, "P1"), (2, "P2"), (3, "P3"), (4, "P4"))
SEVERITY_PRIORITY = {Severity.CRITICAL: 1, Severity.HIGH: 2, Severity.MEDIUM: 3, Severity.LOW: 4}


class ActivityKind(models.TextChoices):
    CREATED = "created", "Created"
    OCCURRENCE = "occurrence", "New occurrence"
    COMMENT = "comment", "Comment"
    ASSIGNED = "assigned", "Assigned"
    STATUS = "status", "Status changed"
    REOPENED = "reopened", "Reopened by a recurrence"
    ESCALATED = "escalated", "Escalated"
    ROUTED = "routed", "Routed"
    MERGED = "merged", "Merged"
    SPLIT = "split", "Split"
    SNOOZED = "snoozed", "Snoozed"
    REPLAY = "replay", "Replay"
    PROPOSED = "proposed", "Classification rule proposed"
    RECLASSIFIED = "reclassified", "Reclassified"


class ReplayStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent, waiting for the success event"
    FAILED = "failed", "Failed to send"
    SUCCEEDED = "succeeded", "Succeeded"


UNCLASSIFIED = "unclassified"


# Replays that hold their occurrence (and their business object) until they end: at most one per occurrence.
REPLAY_IN_FLIGHT = (ReplayStatus.PENDING, ReplayStatus.SENDING, ReplayStatus.SENT)


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class HttpMethod(models.TextChoices):
    POST = "POST", "POST"
    PUT = "PUT", "PUT"
    PATCH = "PATCH", "PATCH"


class ReconciliationKind(models.TextChoices):
    COMPARE = "compare", "Compare a fact between two steps"
    UNIQUE = "unique", "At most one event per value"


class Comparison(models.TextChoices):
    EQUAL = "equal", "Equal"
    NORMALISED = "normalised", "Equal after normalisation (case, whitespace, leading zeros)"
    ABSOLUTE = "absolute", "Within an absolute tolerance"
    RELATIVE = "relative", "Within a relative tolerance"
    CURRENCY = "currency", "Currency-aware (converted with the FX rate table, absolute tolerance)"


class ReconciliationStatus(models.TextChoices):
    MATCHED = "matched", "Matched"
    MISMATCHED = "mismatched", "Mismatched"
    INCOMPLETE = "incomplete", "Incomplete (a side is missing yet)"
    ERROR = "error", "Error (cannot be evaluated)"

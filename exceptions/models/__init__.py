"""The exceptions app's models: cases and what routes and replays them (`cases`), cross-system reconciliation
(`reconciliation`)."""

from exceptions.models.cases import (
    Case,
    CaseActivity,
    Category,
    ClassificationRule,
    ExceptionRecord,
    FingerprintOverride,
    Notification,
    OutboundWebhook,
    Queue,
    Replay,
    ReplayTarget,
    RoutingRule,
    WebhookDelivery,
)
from exceptions.models.reconciliation import (
    FxRate,
    ReconciliationDaily,
    ReconciliationDirtyDay,
    ReconciliationKey,
    ReconciliationReconciledDaily,
    ReconciliationResult,
    ReconciliationRule,
    ValueMapping,
)

__all__ = [
    "Case",
    "CaseActivity",
    "Category",
    "ClassificationRule",
    "ExceptionRecord",
    "FingerprintOverride",
    "FxRate",
    "Notification",
    "OutboundWebhook",
    "Queue",
    "ReconciliationDaily",
    "ReconciliationDirtyDay",
    "ReconciliationKey",
    "ReconciliationReconciledDaily",
    "ReconciliationResult",
    "ReconciliationRule",
    "Replay",
    "ReplayTarget",
    "RoutingRule",
    "ValueMapping",
    "WebhookDelivery",
]

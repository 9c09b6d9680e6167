"""Writes of the exceptions app, one module per topic: `classify` (failures into cases), `cases` (actions on a case),
`escalation`, `notify`, `configuration` (managers' taxonomy and rules), `queues`, `recovery` (cases whose
transactions completed after all), `replays`, `signals` (occurrences that no event carries), `webhooks`.
Callers import the public names from here."""

from exceptions.services.cases import (
    BulkResult,
    case_assign,
    case_comment,
    case_resolve_automatically,
    case_transition,
    cases_bulk,
    cases_merge,
    occurrence_split,
    occurrences_follow_transaction_merge,
)
from exceptions.services.classify import (
    ClassifyOutcome,
    failures_classify,
)
from exceptions.services.configuration import (
    attributes_problem,
    cases_reroute,
    category_create,
    category_snapshot,
    category_update,
    classification_rule_create,
    classification_rule_delete,
    classification_rule_problems,
    classification_rule_set_active,
    classification_rule_snapshot,
    classification_rule_update,
    classification_rules_reorder,
    http_status_problem,
    routing_rule_create,
    routing_rule_delete,
    routing_rule_problems,
    routing_rule_snapshot,
    routing_rule_update,
)
from exceptions.services.drift import interface_silence_raise
from exceptions.services.escalation import (
    cases_escalate,
)
from exceptions.services.learning import (
    case_rule_propose,
    cases_reclassify,
)
from exceptions.services.notify import (
    case_notify,
    notifications_mark_read,
)
from exceptions.services.queues import (
    queue_create,
    queue_member_add,
    queue_member_remove,
    queue_snapshot,
    queue_update,
)
from exceptions.services.recovery import (
    case_resolve_if_recovered,
    cases_resolve_recovered,
    cases_resolve_recovered_for_events,
    cases_sweep_recovered,
)
from exceptions.services.replays import (
    BulkReplayResult,
    replay_request,
    replay_send,
    replays_confirm,
    replays_match_successes,
    replays_request_bulk,
    replays_sweep,
)
from exceptions.services.signals import (
    Signal,
    signal_fingerprint,
    signal_record,
    signal_resolve,
    signals_record,
    signals_record_isolated,
)
from exceptions.services.webhooks import (
    SIGNATURE_HEADER,
    webhook_signature,
    webhooks_deliver,
)

__all__ = [
    "SIGNATURE_HEADER",
    "BulkReplayResult",
    "BulkResult",
    "ClassifyOutcome",
    "Signal",
    "attributes_problem",
    "case_assign",
    "case_comment",
    "case_notify",
    "case_resolve_automatically",
    "case_resolve_if_recovered",
    "case_rule_propose",
    "case_transition",
    "cases_bulk",
    "cases_escalate",
    "cases_merge",
    "cases_reclassify",
    "cases_reroute",
    "cases_resolve_recovered",
    "cases_resolve_recovered_for_events",
    "cases_sweep_recovered",
    "category_create",
    "category_snapshot",
    "category_update",
    "classification_rule_create",
    "classification_rule_delete",
    "classification_rule_problems",
    "classification_rule_set_active",
    "classification_rule_snapshot",
    "classification_rule_update",
    "classification_rules_reorder",
    "failures_classify",
    "http_status_problem",
    "interface_silence_raise",
    "notifications_mark_read",
    "occurrence_split",
    "occurrences_follow_transaction_merge",
    "queue_create",
    "queue_member_add",
    "queue_member_remove",
    "queue_snapshot",
    "queue_update",
    "replay_request",
    "replay_send",
    "replays_confirm",
    "replays_match_successes",
    "replays_request_bulk",
    "replays_sweep",
    "routing_rule_create",
    "routing_rule_delete",
    "routing_rule_problems",
    "routing_rule_snapshot",
    "routing_rule_update",
    "signal_fingerprint",
    "signal_record",
    "signal_resolve",
    "signals_record",
    "signals_record_isolated",
    "webhook_signature",
    "webhooks_deliver",
]

"""Writes of the transactions app, one module per topic; callers import the public names from here.

- sources: ingest sources, their tokens and CloudEvents source aliases
- ingest: the ingest pipeline (records_ingest) and the dead-letter store it feeds
- event_store: how a request's accepted events are written (claims, batch row, events; one statement or COPY)
- correlation_hints: telling the workers a stored batch waits for correlation, coalesced per process
- dead_letters: what becomes of a dead letter: an undecodable body kept, replay (repaired or not), discard, bulk replay
- rules: extraction and redaction rules
- processes: process definitions and their expected steps
- catalogue: owners and facts of discovered systems and interfaces, edited or imported from CSV
- correlation: correlation of stored batches into transactions (the database side of transactions.correlation)
- interfaces: interface discovery from correlated transactions and its daily rollups (the integration map)
- retention: forgetting what is older than the retention period
"""

from transactions.services.catalogue import (
    CATALOGUE_COLUMNS,
    CatalogueImportError,
    CatalogueInput,
    catalogue_entry_update,
    catalogue_import,
)
from transactions.services.correlation import (
    batch_correlate,
    correlating_key_types,
    process_specs,
    transactions_mark_stalled,
)
from transactions.services.dead_letters import (
    MAX_BULK_REPLAY,
    BulkReplayOutcome,
    body_dead_letter,
    dead_letter_discard,
    dead_letter_replay,
    dead_letters_replay_bulk,
)
from transactions.services.ingest import (
    MAX_DEAD_LETTER_BODY,
    IngestOutcome,
    records_ingest,
    system_for_source_uri,
)
from transactions.services.interfaces import (
    interface_days_rebuild,
    interface_earliest_day,
    interface_hops_refresh,
    interface_map_rebuild,
    interface_rollups_refresh,
)
from transactions.services.processes import (
    ProcessStepInput,
    correlation_key_problem,
    process_definition_create,
    process_definition_update,
    process_snapshot,
    process_step_problems,
    process_step_rows,
)
from transactions.services.retention import ingest_retention_apply
from transactions.services.rules import (
    extraction_rule_create,
    extraction_rule_delete,
    extraction_rule_problems,
    extraction_rule_set_active,
    extraction_rule_snapshot,
    extraction_rule_update,
    redaction_rule_create,
    redaction_rule_delete,
    redaction_rule_snapshot,
    redaction_rule_update,
)
from transactions.services.sources import (
    TOKEN_PREFIX,
    TOKEN_TOUCH_INTERVAL,
    ingest_source_authenticate,
    ingest_source_create,
    ingest_token_create,
    ingest_token_revoke,
    source_alias_create,
    source_alias_delete,
    source_alias_snapshot,
    token_digest,
)

__all__ = [
    "CATALOGUE_COLUMNS",
    "MAX_BULK_REPLAY",
    "MAX_DEAD_LETTER_BODY",
    "TOKEN_PREFIX",
    "TOKEN_TOUCH_INTERVAL",
    "BulkReplayOutcome",
    "CatalogueImportError",
    "CatalogueInput",
    "IngestOutcome",
    "ProcessStepInput",
    "batch_correlate",
    "body_dead_letter",
    "catalogue_entry_update",
    "catalogue_import",
    "correlating_key_types",
    "correlation_key_problem",
    "dead_letter_discard",
    "dead_letter_replay",
    "dead_letters_replay_bulk",
    "extraction_rule_create",
    "extraction_rule_delete",
    "extraction_rule_problems",
    "extraction_rule_set_active",
    "extraction_rule_snapshot",
    "extraction_rule_update",
    "ingest_retention_apply",
    "ingest_source_authenticate",
    "ingest_source_create",
    "ingest_token_create",
    "ingest_token_revoke",
    "interface_days_rebuild",
    "interface_earliest_day",
    "interface_hops_refresh",
    "interface_map_rebuild",
    "interface_rollups_refresh",
    "process_definition_create",
    "process_definition_update",
    "process_snapshot",
    "process_specs",
    "process_step_problems",
    "process_step_rows",
    "records_ingest",
    "redaction_rule_create",
    "redaction_rule_delete",
    "redaction_rule_snapshot",
    "redaction_rule_update",
    "source_alias_create",
    "source_alias_delete",
    "source_alias_snapshot",
    "system_for_source_uri",
    "token_digest",
    "transactions_mark_stalled",
]

"""The ingest pipeline: validate, apply the source's rules, store (`event_store`) and enqueue; and the dead-letter store
it feeds."""

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from console.lib.memo import TopicMemo
from transactions.canonical import (
    CanonicalEvent,
    PathError,
    RecordError,
    RedactionSpec,
    Redactor,
    kind_matches,
    parse_canonical,
    parse_path,
    redact,
    resolve_path,
    storable_json,
)
from transactions.choices import Channel, DeadLetterStatus, RuleAction
from transactions.models import (
    DeadLetter,
    ExtractionRule,
    IngestSource,
    RedactionRule,
)
from transactions.partitions import event_partition_ensure
from transactions.receivers import RULES_TOPIC
from transactions.records import DecodedRecord, JsonDict
from transactions.services.correlation_hints import correlation_hint_enqueue
from transactions.services.event_store import IngestOutcome, events_store, events_store_committed

logger = logging.getLogger(__name__)

# Undecodable bodies up to this size are kept whole in the dead-letter store; larger ones only by their reason.
MAX_DEAD_LETTER_BODY = 1024 * 1024
# Attribute set on a CloudEvent stored without `time`: its occurred_at is the receive time.
OCCURRED_AT_SOURCE = "finance.occurred_at_source"


@dataclass(frozen=True)
class _KeyRule:
    source_id: int | None
    kind_pattern: str
    action: str
    segments: list[str | int]
    key_type: str
    description: str


@dataclass(frozen=True)
class _KindRules:
    """What a source's extraction rules do to the records of one kind."""

    # The first rule marking the kind failed (the error it writes is that rule's; later ones would change nothing).
    failure: _KeyRule | None
    # The business-key rules in order, as (key type, first path segment, path).
    keys: tuple[tuple[str, str | int, list[str | int]], ...]


@dataclass(frozen=True)
class _SourceRules:
    key_rules: list[_KeyRule]
    redaction: Redactor
    aliases: list[tuple[str, str]]
    _rules_by_kind: dict[str, _KindRules] = field(default_factory=dict, compare=False, repr=False)

    def rules_for(self, kind: str) -> _KindRules:
        """The rules whose kind pattern matches `kind`, worked out once per kind, not once per record."""
        try:
            return self._rules_by_kind[kind]
        except KeyError:
            matching = [rule for rule in self.key_rules if kind_matches(rule.kind_pattern, kind)]
            found = _KindRules(
                failure=next((rule for rule in matching if rule.action == RuleAction.MARK_FAILED), None),
                keys=tuple(
                    (rule.key_type, rule.segments[0], rule.segments)
                    for rule in matching
                    if rule.action != RuleAction.MARK_FAILED
                ),
            )
            if len(self._rules_by_kind) < _REMEMBERED_KINDS:  # kinds are sender-chosen: bound what is kept
                self._rules_by_kind[kind] = found
            return found


_REMEMBERED_KINDS = 4096


_RULES = TopicMemo(RULES_TOPIC)


def _rules_for(source: IngestSource) -> _SourceRules:
    """The source's rules, read from the database once per process and change (see console.lib.memo)."""
    return _RULES.get(source.pk, lambda: _rules_load(source))


def _rules_load(source: IngestSource) -> _SourceRules:
    key_rules = []
    for rule in ExtractionRule.objects.filter(is_active=True).filter_source(source):
        try:
            segments = parse_path(rule.path) if rule.action == RuleAction.BUSINESS_KEY else []
        except PathError:
            logger.warning("ingest.rule_unreadable", extra={"rule_id": rule.pk})
            continue
        key_rules.append(
            _KeyRule(rule.source_id, rule.kind_pattern, rule.action, segments, rule.key_type, rule.description)
        )
    redaction = Redactor(
        RedactionSpec(r.pattern, r.action) for r in RedactionRule.objects.filter(is_active=True).filter_source(source)
    )
    aliases = list(source.aliases.values_list("pattern", "system"))
    return _SourceRules(key_rules, redaction, aliases)


def system_for_source_uri(uri: str, aliases: Iterable[tuple[str, str]]) -> str | None:
    """The system an alias maps a CloudEvents source URI to: exact match first, then the longest prefix pattern."""
    best: tuple[int, str] | None = None
    for pattern, system in aliases:
        if pattern == uri:
            return system
        if pattern.endswith("*") and uri.startswith(pattern[:-1]) and (best is None or len(pattern) > best[0]):
            best = (len(pattern), system)
    return best[1] if best else None


def _apply_rules(item: DecodedRecord, rules: _SourceRules, channel: str, received_at: datetime) -> JsonDict:
    """The record with the source's rules applied: a new dict when they change it, the decoded record itself when they
    do not (parse_canonical only reads it)."""
    decoded = item.record or {}
    record = dict(decoded) if channel == Channel.CLOUDEVENTS else decoded
    if channel == Channel.CLOUDEVENTS:
        uri = str(record.get("system") or "")
        system = system_for_source_uri(uri, rules.aliases)
        if system is None and len(uri) > 100:
            raise RecordError(f"CloudEvents source {uri[:60]!r}… has no alias and is too long to be a system name")
        record["system"] = system or uri
        record["attributes"] = {**(record.get("attributes") or {}), "cloudevents.source": uri}
        if record.get("occurred_at") is None:
            # CloudEvents 1.0 makes `time` optional: the receive time stands in, marked so that nobody mistakes it
            # for the moment the business event happened.
            record["occurred_at"] = received_at.isoformat()
            record["attributes"][OCCURRED_AT_SOURCE] = "received"
    kind_rules = rules.rules_for(str(record.get("kind") or ""))
    failure = kind_rules.failure
    if failure is not None:
        record = record if record is not decoded else dict(decoded)
        record["status"] = "error"
        if not record.get("error"):
            message = failure.description or f"kind matches {failure.kind_pattern}"
            record["error"] = {"code": None, "message": message, "type": "extraction_rule"}
    keys = record.get("business_keys")
    if kind_rules.keys and isinstance(keys, dict):
        found = {}
        for key_type, head, segments in kind_rules.keys:
            if key_type not in keys and key_type not in found:
                # A path reads the record as decoded, or else the record as sent: what it would find in
                # {**raw, **decoded} without building that (nor `raw`, which OTLP builds only when asked for).
                value = resolve_path(decoded if head in decoded else item.raw, segments)
                if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
                    found[key_type] = str(value)
        if found:
            record = record if record is not decoded else dict(decoded)
            record["business_keys"] = {**keys, **found}
    return record


def _dead_letter_content_hash(letter: DeadLetter) -> str:
    """What makes two dead letters of a source the same: the channel and the content as kept (after redaction)."""
    content = {"channel": letter.channel, "raw": letter.raw, "raw_text": letter.raw_text}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


_DEAD_LETTER_COLUMNS = (
    "source_id",
    "channel",
    "received_at",
    "last_received_at",
    "record_index",
    "reason",
    "raw",
    "raw_text",
    "status",
    "replay_count",
    "last_replay_outcome",
    "version",
    "content_hash",
    "repeats",
)


def dead_letters_store(letters: list[DeadLetter]) -> list[int]:
    """Keep rejected records, one pending letter per source and content: a repeat is counted on the letter already
    there (`repeats`, `last_received_at`) instead of filling the store with copies a sender's retries would make.

    One upsert per chunk, so that racing batches rejecting the same record never fail on the unique constraint.
    Returns the ids of the letters stored or counted (in no particular order).
    """
    unique: dict[tuple[int, str], DeadLetter] = {}
    for letter in letters:
        letter.content_hash = _dead_letter_content_hash(letter)
        key = (letter.source_id, letter.content_hash)
        if key in unique:
            unique[key].repeats += 1  # the same content twice in one batch: one letter, one repeat
            continue
        letter.status = DeadLetterStatus.PENDING
        letter.repeats = 0
        letter.last_received_at = letter.received_at
        unique[key] = letter
    if not unique:
        return []
    table = DeadLetter._meta.db_table
    fields = [DeadLetter._meta.get_field(name.removesuffix("_id")) for name in _DEAD_LETTER_COLUMNS]
    rows = list(unique.values())
    ids: list[int] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start : start + 500]
            params: list[Any] = []
            for letter in chunk:
                params += [field.get_db_prep_save(getattr(letter, field.attname), connection) for field in fields]
            values = ", ".join(["(" + ", ".join(["%s"] * len(fields)) + ")"] * len(chunk))
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(_DEAD_LETTER_COLUMNS)}) VALUES {values} "
                f"ON CONFLICT (source_id, content_hash) WHERE status = '{DeadLetterStatus.PENDING}' "
                f"DO UPDATE SET repeats = {table}.repeats + EXCLUDED.repeats + 1, "
                "last_received_at = EXCLUDED.last_received_at RETURNING id",
                params,
            )
            ids += [row[0] for row in cursor.fetchall()]
    return ids


def records_ingest(
    *,
    source: IngestSource,
    channel: str,
    records: list[DecodedRecord],
    received_at: datetime | None = None,
) -> IngestOutcome:
    """Validate, store and enqueue one request's records in one database transaction.

    Rejected records go to the dead-letter store; a record whose idempotency key this source already sent (in this
    batch or before) is counted as a duplicate and changes nothing.
    """
    received_at = received_at or timezone.now()
    rules = _rules_for(source)
    outcome = IngestOutcome()
    accepted: dict[str, CanonicalEvent] = {}
    dead: list[DeadLetter] = []
    for item in records:
        reason = item.error
        event = None
        if reason is None:
            try:
                prepared = _apply_rules(item, rules, channel, received_at)
                # Redacted while parsing, so that unknown top-level fields (folded into attributes) are redacted too.
                event = parse_canonical(prepared, require_event_id=channel == Channel.NATIVE, redactor=rules.redaction)
                if not item.dedup_key:
                    raise RecordError("record has no idempotency key")
            except RecordError as exc:
                reason = str(exc)
        if reason is not None or event is None:
            reason = reason or "record is invalid"
            outcome.rejected.append((item.index, reason))
            dead.append(
                DeadLetter(
                    source=source,
                    channel=channel,
                    received_at=received_at,
                    record_index=item.index,
                    reason=reason,
                    raw=storable_json(redact(item.raw, rules.redaction)),
                )
            )
        elif item.dedup_key in accepted:
            outcome.duplicates += 1
        else:
            accepted[item.dedup_key] = event

    # Before the batch's transaction: creating a partition takes locks that should not wait on a batch.
    event_partition_ensure(received_at)
    if not dead and events_store_committed(source, channel, received_at, accepted, outcome):
        if outcome.accepted:
            correlation_hint_enqueue(outcome.batch_id, outcome.accepted)  # committed, as an on_commit hook
        _log_stored(source, channel, outcome)
        return outcome
    with transaction.atomic():
        events_store(source, channel, received_at, accepted, outcome)
        dead_letters_store(dead)
        if outcome.accepted:
            batch_id, events = outcome.batch_id, outcome.accepted
            transaction.on_commit(lambda: correlation_hint_enqueue(batch_id, events))
    _log_stored(source, channel, outcome)
    return outcome


def _log_stored(source: IngestSource, channel: str, outcome: IngestOutcome) -> None:
    logger.info(
        "ingest.batch_stored",
        extra={
            "source": source.name,
            "channel": channel,
            "accepted": outcome.accepted,
            "duplicates": outcome.duplicates,
            "rejected": len(outcome.rejected),
        },
    )

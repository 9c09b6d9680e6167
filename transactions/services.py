"""Writes of the transactions app: ingest sources and tokens, the ingest pipeline, dead letters, retention."""

import hashlib
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from console.lib.audit import audit_delete, audit_record
from console.lib.errors import DomainError, StaleVersion
from transactions import cloudevents, native, otlp
from transactions.canonical import (
    CanonicalEvent,
    PathError,
    RecordError,
    RedactionSpec,
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
    Event,
    ExtractionRule,
    IdempotencyKey,
    IngestBatch,
    IngestSource,
    IngestToken,
    RedactionRule,
)
from transactions.partitions import event_partition_ensure
from transactions.records import BodyDecodeError, DecodedRecord, JsonDict

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "clt_"  # noqa: S105 - a public prefix that tells Closeloop tokens apart
# Undecodable bodies up to this size are kept whole in the dead-letter store; larger ones only by their reason.
MAX_DEAD_LETTER_BODY = 1024 * 1024
# last_used_at is a hint for operators; writing it on every request would turn reads into writes.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


# ---- Sources and tokens ---------------------------------------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@transaction.atomic
def ingest_source_create(*, name: str, actor: str, description: str = "") -> IngestSource:
    if IngestSource.objects.filter(name=name).exists():
        raise DomainError(f"an ingest source named {name!r} exists already")
    source = IngestSource.objects.create(name=name, description=description)
    audit_record(actor=actor, action="ingest_source.created", obj=source, after={"name": name})
    return source


@transaction.atomic
def ingest_token_create(*, source: IngestSource, actor: str, label: str = "") -> tuple[IngestToken, str]:
    """A new token for `source`; the clear text is returned once and only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    instance = IngestToken.objects.create(
        source=source, prefix=token[:12], digest=token_digest(token), label=label, created_by=actor
    )
    audit_record(
        actor=actor,
        action="ingest_token.created",
        obj=instance,
        after={"source": source.name, "prefix": instance.prefix, "label": label},
    )
    return instance, token


@transaction.atomic
def ingest_token_revoke(*, token: IngestToken, actor: str) -> IngestToken:
    token = IngestToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(actor=actor, action="ingest_token.revoked", obj=token, after={"source": token.source.name})
    return token


def ingest_source_authenticate(*, raw_token: str) -> IngestSource | None:
    """The active source holding this bearer token, or None."""
    if not raw_token.startswith(TOKEN_PREFIX):
        return None
    token = (
        IngestToken.objects.select_related("source")
        .filter(digest=token_digest(raw_token), revoked_at__isnull=True, source__is_active=True)
        .first()
    )
    if token is None:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > TOKEN_TOUCH_INTERVAL:
        IngestToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.source


# ---- The ingest pipeline --------------------------------------------------------------------------------------------


@dataclass
class IngestOutcome:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    batch_id: int | None = None
    event_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class _KeyRule:
    source_id: int | None
    kind_pattern: str
    action: str
    segments: list[str | int]
    key_type: str
    description: str


@dataclass(frozen=True)
class _SourceRules:
    key_rules: list[_KeyRule]
    redaction: list[RedactionSpec]
    aliases: list[tuple[str, str]]


def _rules_for(source: IngestSource) -> _SourceRules:
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
    redaction = [
        RedactionSpec(r.pattern, r.action) for r in RedactionRule.objects.filter(is_active=True).filter_source(source)
    ]
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


def _apply_rules(record: JsonDict, document: JsonDict, rules: _SourceRules, channel: str) -> JsonDict:
    record = dict(record)
    if channel == Channel.CLOUDEVENTS:
        uri = str(record.get("system") or "")
        system = system_for_source_uri(uri, rules.aliases)
        if system is None and len(uri) > 100:
            raise RecordError(f"CloudEvents source {uri[:60]!r}… has no alias and is too long to be a system name")
        record["system"] = system or uri
        record["attributes"] = {**(record.get("attributes") or {}), "cloudevents.source": uri}
    kind = str(record.get("kind") or "")
    keys = dict(record.get("business_keys") or {}) if isinstance(record.get("business_keys"), dict) else None
    for rule in rules.key_rules:
        if not kind_matches(rule.kind_pattern, kind):
            continue
        if rule.action == RuleAction.MARK_FAILED:
            record["status"] = "error"
            if not record.get("error"):
                message = rule.description or f"kind matches {rule.kind_pattern}"
                record["error"] = {"code": None, "message": message, "type": "extraction_rule"}
        elif keys is not None and rule.key_type not in keys:
            value = resolve_path(document, rule.segments)
            if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
                keys[rule.key_type] = str(value)
    if keys is not None:
        record["business_keys"] = keys
    return record


def _claim_keys(source: IngestSource, keys: list[str], received_at: datetime) -> set[str]:
    """Insert idempotency keys; the ones returned are new. Sorted, so that racing batches lock in one order."""
    claimed: set[str] = set()
    table = IdempotencyKey._meta.db_table
    step = 500
    with connection.cursor() as cursor:
        for start in range(0, len(keys), step):
            chunk = keys[start : start + step]
            values = ", ".join(["(%s, %s, %s)"] * len(chunk))
            params: list[Any] = []
            for key in chunk:
                params += [source.pk, key, received_at]
            cursor.execute(
                f"INSERT INTO {table} (source_id, key, received_at) VALUES {values} "
                "ON CONFLICT (source_id, key) DO NOTHING RETURNING key",
                params,
            )
            claimed.update(row[0] for row in cursor.fetchall())
    return claimed


_EVENT_COLUMNS = (
    "received_at",
    "source_id",
    "batch_id",
    "channel",
    "dedup_key",
    "event_id",
    "occurred_at",
    "system",
    "kind",
    "status",
    "duration_ms",
    "trace_id",
    "span_id",
    "parent_span_id",
    "links",
    "business_keys",
    "entity",
    "amount",
    "currency",
    "approval",
    "error",
    "attributes",
)


def _event_values(batch: IngestBatch, channel: str, dedup_key: str, event: CanonicalEvent) -> dict[str, Any]:
    return {
        "received_at": batch.received_at,
        "source_id": batch.source_id,
        "batch_id": batch.pk,
        "channel": channel,
        "dedup_key": dedup_key,
        "event_id": event.event_id,
        "occurred_at": event.occurred_at,
        "system": event.system,
        "kind": event.kind,
        "status": event.status,
        "duration_ms": event.duration_ms,
        "trace_id": event.trace_id,
        "span_id": event.span_id,
        "parent_span_id": event.parent_span_id,
        "links": event.links,
        "business_keys": event.business_keys,
        "entity": event.entity,
        "amount": event.amount,
        "currency": event.currency,
        "approval": event.approval,
        "error": event.error,
        "attributes": event.attributes,
    }


def _store_events(batch: IngestBatch, channel: str, rows: list[tuple[str, CanonicalEvent]]) -> list[int]:
    if not rows:
        return []
    values = [_event_values(batch, channel, key, event) for key, event in rows]
    if connection.vendor == "postgresql":
        from psycopg.types.json import Jsonb

        json_columns = {"links", "business_keys", "approval", "error", "attributes"}
        columns = ", ".join(_EVENT_COLUMNS)
        # COPY is the fastest way in; ids come back from the batch's rows afterwards (one indexed query).
        with connection.cursor() as cursor, cursor.copy(f"COPY {Event._meta.db_table} ({columns}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(
                    [Jsonb(row[c]) if c in json_columns and row[c] is not None else row[c] for c in _EVENT_COLUMNS]
                )
        return list(Event.objects.filter(batch_id=batch.pk).order_by("id").values_list("id", flat=True))
    created = Event.objects.bulk_create([Event(**row) for row in values], batch_size=500)
    return [e.pk for e in created]


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
                document = {**item.raw, **(item.record or {})}
                prepared = _apply_rules(item.record or {}, document, rules, channel)
                event = parse_canonical(prepared, require_event_id=channel == Channel.NATIVE)
                if rules.redaction:
                    # After parsing, so that unknown top-level fields (folded into attributes) are redacted too.
                    event = replace(event, attributes=redact(event.attributes, rules.redaction))
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
    with transaction.atomic():
        batch = IngestBatch.objects.create(source=source, channel=channel, received_at=received_at)
        fresh = _claim_keys(source, sorted(accepted), received_at) if accepted else set()
        rows = [(key, accepted[key]) for key in accepted if key in fresh]
        outcome.event_ids = _store_events(batch, channel, rows)
        DeadLetter.objects.bulk_create(dead, batch_size=500)
        outcome.accepted = len(rows)
        outcome.duplicates += len(accepted) - len(rows)
        outcome.batch_id = batch.pk
        IngestBatch.objects.filter(pk=batch.pk).update(
            accepted=outcome.accepted, duplicates=outcome.duplicates, rejected=len(outcome.rejected)
        )
        if rows:
            from transactions.tasks import correlate_batch

            transaction.on_commit(lambda: correlate_batch.delay(batch.pk))
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
    return outcome


def body_dead_letter(*, source: IngestSource, channel: str, body: bytes, reason: str) -> DeadLetter:
    """Keep an undecodable body (when small enough to keep) so that its sender can be shown what arrived."""
    kept = body[:MAX_DEAD_LETTER_BODY].decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")
    if len(body) > MAX_DEAD_LETTER_BODY:
        reason = f"{reason} (body of {len(body)} bytes; first {MAX_DEAD_LETTER_BODY} kept)"
    with transaction.atomic():
        return DeadLetter.objects.create(
            source=source, channel=channel, received_at=timezone.now(), reason=reason, raw_text=kept
        )


# ---- Dead letters ---------------------------------------------------------------------------------------------------


def _redecode(channel: str, raw: JsonDict) -> list[DecodedRecord]:
    if channel == Channel.NATIVE:
        return native.record_from_raw(raw)
    if channel == Channel.CLOUDEVENTS:
        return cloudevents.decode_cloudevents(
            cloudevents.structured_body(raw), content_type="application/cloudevents+json", headers={}
        )
    if channel == Channel.OTLP_TRACES:
        return otlp.decode_traces(otlp.request_json_from_raw(raw, signal="traces"), content_type="application/json")
    if channel == Channel.OTLP_LOGS:
        return otlp.decode_logs(otlp.request_json_from_raw(raw, signal="logs"), content_type="application/json")
    raise DomainError(f"unknown channel {channel!r}")


def dead_letter_replay(
    *, dead_letter: DeadLetter, actor: str, expected_version: int, raw: JsonDict | None = None
) -> IngestOutcome:
    """Send a dead letter (optionally repaired) through the same validation again; the outcome is recorded."""
    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
        if letter.version != expected_version:
            raise StaleVersion("this dead letter changed since you opened it; reload and try again")
        if letter.status != DeadLetterStatus.PENDING:
            raise DomainError(f"this dead letter is {letter.status} already")
        payload = raw if raw is not None else letter.raw
        if payload is None:
            raise DomainError("this dead letter holds an undecodable body; fix the sender and send it again")
        try:
            records = _redecode(letter.channel, payload)
        except BodyDecodeError as exc:
            records = [DecodedRecord(0, None, None, str(exc), payload)]
        if len(records) != 1:
            raise DomainError(f"the repaired record decodes to {len(records)} records; a replay carries exactly one")
        outcome = records_ingest(source=letter.source, channel=letter.channel, records=records)
        # The replay's own rejection is already a new dead letter; this one records how the attempt went.
        if outcome.rejected:
            result = f"rejected again: {outcome.rejected[0][1]}"
        elif outcome.duplicates:
            result = "duplicate: this record was stored before"
        else:
            result = f"stored as event {outcome.event_ids[0]}"
        before = {"status": letter.status, "raw": letter.raw}
        letter.replay_count += 1
        letter.last_replayed_at = timezone.now()
        letter.last_replay_outcome = result
        letter.version += 1
        if not outcome.rejected:
            letter.status = DeadLetterStatus.REPLAYED
        if raw is not None:
            letter.raw = storable_json(raw)
        letter.save()
        audit_record(
            actor=actor,
            action="dead_letter.replayed",
            obj=letter,
            before=before,
            after={"status": letter.status, "raw": letter.raw, "outcome": result},
        )
    return outcome


@transaction.atomic
def dead_letter_discard(*, dead_letter: DeadLetter, actor: str, expected_version: int) -> DeadLetter:
    letter = DeadLetter.objects.select_for_update().get(pk=dead_letter.pk)
    if letter.version != expected_version:
        raise StaleVersion("this dead letter changed since you opened it; reload and try again")
    if letter.status != DeadLetterStatus.PENDING:
        raise DomainError(f"this dead letter is {letter.status} already")
    letter.status = DeadLetterStatus.DISCARDED
    letter.version += 1
    letter.save(update_fields=["status", "version"])
    audit_record(actor=actor, action="dead_letter.discarded", obj=letter, after={"status": letter.status})
    return letter


# ---- Retention ------------------------------------------------------------------------------------------------------


def ingest_retention_apply(*, now: datetime | None = None) -> dict[str, int]:
    """Forget what is older than the retention period: events (whole partitions on PostgreSQL), keys, batches."""
    from transactions.partitions import event_partitions_drop_before

    cutoff = (now or timezone.now()) - timedelta(days=settings.EVENT_RETENTION_DAYS)
    removed = {"events": event_partitions_drop_before(cutoff)}
    with transaction.atomic():
        removed["idempotency_keys"] = IdempotencyKey.objects.filter(received_at__lt=cutoff).delete()[0]
        removed["dead_letters"] = DeadLetter.objects.filter(received_at__lt=cutoff).delete()[0]
        removed["batches"] = (
            IngestBatch.objects.filter(received_at__lt=cutoff).exclude(correlated_at__isnull=True).delete()[0]
        )
    if any(removed.values()):
        audit_record(actor="system:retention", action="ingest.retention_applied", after={"removed": removed})
    return removed


# ---- Console edits of ingest configuration --------------------------------------------------------------------------
# Imported here rather than at the head so that this block stays one self-contained addition.
import re  # noqa: E402

from transactions.choices import RedactionAction  # noqa: E402
from transactions.models import SourceAlias  # noqa: E402

# The key types parse_canonical accepts: a rule naming another type would make every record it matches fail.
_RULE_KEY_TYPE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def source_alias_snapshot(alias: SourceAlias) -> dict[str, Any]:
    return {"source": alias.source.name, "pattern": alias.pattern, "system": alias.system}


def _alias_problem(pattern: str, system: str) -> str | None:
    if not pattern:
        return "the pattern is empty"
    if "*" in pattern[:-1]:
        return "a pattern is an exact CloudEvents source or a prefix ending in a single *"
    if not system:
        return "the system is empty"
    return None


@transaction.atomic
def source_alias_create(*, source: IngestSource, pattern: str, system: str, actor: str) -> SourceAlias:
    """Map a CloudEvents `source` URI (exact, or a prefix ending in *) of `source` to a system name."""
    pattern, system = pattern.strip(), system.strip()
    problem = _alias_problem(pattern, system)
    if problem:
        raise DomainError(problem)
    if SourceAlias.objects.filter(source=source, pattern=pattern).exists():
        raise DomainError(f"{source.name} has an alias for {pattern!r} already")
    alias = SourceAlias.objects.create(source=source, pattern=pattern, system=system)
    audit_record(actor=actor, action="source_alias.created", obj=alias, after=source_alias_snapshot(alias))
    return alias


@transaction.atomic
def source_alias_delete(*, alias: SourceAlias, actor: str) -> None:
    audit_delete(obj=alias, actor=actor, action="source_alias.deleted", before=source_alias_snapshot(alias))


def extraction_rule_problems(*, action: str, path: str, key_type: str) -> dict[str, str]:
    """What keeps a rule from working, by field name (empty when it is sound); forms and services both ask."""
    problems: dict[str, str] = {}
    if action not in RuleAction.values:
        problems["action"] = f"unknown action {action!r}"
        return problems
    if action == RuleAction.BUSINESS_KEY:
        if not path:
            problems["path"] = "a business-key rule needs a JSON path"
        if not key_type:
            problems["key_type"] = "a business-key rule needs a key type"
    if path and "path" not in problems:
        try:
            parse_path(path)
        except PathError as exc:
            problems["path"] = str(exc)
    if key_type and not _RULE_KEY_TYPE_RE.match(key_type):
        problems["key_type"] = "lower-case letters, digits and _, starting with a letter (e.g. order, invoice)"
    return problems


def extraction_rule_snapshot(rule: ExtractionRule) -> dict[str, Any]:
    return {
        "source": rule.source.name if rule.source_id else None,
        "kind_pattern": rule.kind_pattern,
        "action": rule.action,
        "path": rule.path,
        "key_type": rule.key_type,
        "description": rule.description,
        "position": rule.position,
        "is_active": rule.is_active,
    }


def _extraction_rule_apply(
    rule: ExtractionRule,
    *,
    source: IngestSource | None,
    kind_pattern: str,
    action: str,
    path: str,
    key_type: str,
    description: str,
    position: int,
    is_active: bool,
) -> None:
    path, key_type = path.strip(), key_type.strip()
    problems = extraction_rule_problems(action=action, path=path, key_type=key_type)
    if problems:
        raise DomainError("; ".join(f"{name}: {text}" for name, text in problems.items()))
    rule.source = source
    rule.kind_pattern = kind_pattern.strip() or "*"
    rule.action = action
    rule.path = path
    rule.key_type = key_type
    rule.description = description.strip()
    rule.position = position
    rule.is_active = is_active


@transaction.atomic
def extraction_rule_create(
    *,
    actor: str,
    source: IngestSource | None,
    kind_pattern: str,
    action: str,
    path: str = "",
    key_type: str = "",
    description: str = "",
    position: int = 100,
    is_active: bool = True,
) -> ExtractionRule:
    rule = ExtractionRule()
    _extraction_rule_apply(
        rule,
        source=source,
        kind_pattern=kind_pattern,
        action=action,
        path=path,
        key_type=key_type,
        description=description,
        position=position,
        is_active=is_active,
    )
    rule.save()
    audit_record(actor=actor, action="extraction_rule.created", obj=rule, after=extraction_rule_snapshot(rule))
    return rule


@transaction.atomic
def extraction_rule_update(
    *,
    rule: ExtractionRule,
    actor: str,
    source: IngestSource | None,
    kind_pattern: str,
    action: str,
    path: str = "",
    key_type: str = "",
    description: str = "",
    position: int = 100,
    is_active: bool = True,
) -> ExtractionRule:
    # Only the rule's row is locked: joining its nullable source would be an outer join, which PostgreSQL cannot lock.
    rule = ExtractionRule.objects.select_for_update().get(pk=rule.pk)
    before = extraction_rule_snapshot(rule)
    _extraction_rule_apply(
        rule,
        source=source,
        kind_pattern=kind_pattern,
        action=action,
        path=path,
        key_type=key_type,
        description=description,
        position=position,
        is_active=is_active,
    )
    after = extraction_rule_snapshot(rule)
    if after == before:
        return rule
    rule.save()
    audit_record(actor=actor, action="extraction_rule.updated", obj=rule, before=before, after=after)
    return rule


@transaction.atomic
def extraction_rule_set_active(*, rule: ExtractionRule, actor: str, is_active: bool) -> ExtractionRule:
    rule = ExtractionRule.objects.select_for_update().get(pk=rule.pk)
    if rule.is_active == is_active:
        return rule
    if is_active:
        # A rule saved before validation existed (or loaded as data) must not start rejecting records.
        problems = extraction_rule_problems(action=rule.action, path=rule.path, key_type=rule.key_type)
        if problems:
            raise DomainError("fix this rule before activating it: " + "; ".join(problems.values()))
    before = extraction_rule_snapshot(rule)
    rule.is_active = is_active
    rule.save(update_fields=["is_active", "updated_at"])
    audit_record(
        actor=actor,
        action="extraction_rule.activated" if is_active else "extraction_rule.deactivated",
        obj=rule,
        before=before,
        after=extraction_rule_snapshot(rule),
    )
    return rule


@transaction.atomic
def extraction_rule_delete(*, rule: ExtractionRule, actor: str) -> None:
    audit_delete(obj=rule, actor=actor, action="extraction_rule.deleted", before=extraction_rule_snapshot(rule))


def redaction_rule_snapshot(rule: RedactionRule) -> dict[str, Any]:
    return {
        "source": rule.source.name if rule.source_id else None,
        "pattern": rule.pattern,
        "action": rule.action,
        "is_active": rule.is_active,
    }


def _redaction_rule_apply(
    rule: RedactionRule, *, source: IngestSource | None, pattern: str, action: str, is_active: bool
) -> None:
    pattern = pattern.strip()
    if not pattern:
        raise DomainError("the pattern is empty")
    if action not in RedactionAction.values:
        raise DomainError(f"unknown redaction action {action!r}")
    rule.source = source
    rule.pattern = pattern
    rule.action = action
    rule.is_active = is_active


@transaction.atomic
def redaction_rule_create(
    *, actor: str, source: IngestSource | None, pattern: str, action: str, is_active: bool = True
) -> RedactionRule:
    rule = RedactionRule()
    _redaction_rule_apply(rule, source=source, pattern=pattern, action=action, is_active=is_active)
    rule.save()
    audit_record(actor=actor, action="redaction_rule.created", obj=rule, after=redaction_rule_snapshot(rule))
    return rule


@transaction.atomic
def redaction_rule_update(
    *, rule: RedactionRule, actor: str, source: IngestSource | None, pattern: str, action: str, is_active: bool
) -> RedactionRule:
    rule = RedactionRule.objects.select_for_update().get(pk=rule.pk)
    before = redaction_rule_snapshot(rule)
    _redaction_rule_apply(rule, source=source, pattern=pattern, action=action, is_active=is_active)
    after = redaction_rule_snapshot(rule)
    if after == before:
        return rule
    rule.save()
    audit_record(actor=actor, action="redaction_rule.updated", obj=rule, before=before, after=after)
    return rule


@transaction.atomic
def redaction_rule_delete(*, rule: RedactionRule, actor: str) -> None:
    audit_delete(obj=rule, actor=actor, action="redaction_rule.deleted", before=redaction_rule_snapshot(rule))


# ---- Process definitions (console) ----------------------------------------------------------------------------------
# Imported here rather than at the head so that this block stays one self-contained addition.
from transactions.choices import BROAD_KEY_TYPES  # noqa: E402
from transactions.models import ProcessDefinition, ProcessStep  # noqa: E402

_DURATION_RE = re.compile(r"^(?:\d+[wdhm])+$")
_DURATION_PART_RE = re.compile(r"(\d+)([wdhm])")
_DURATION_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
# Longer allowances or targets are typos ("400d"), not plans: nobody waits more than a year for the next step.
MAX_DURATION = timedelta(days=366)


def duration_parse(text: str) -> timedelta:
    """'4h', '2d', '90m', '1w' or a combination ('1d 4h') as a timedelta; DomainError with the reason otherwise."""
    compact = re.sub(r"\s+", "", (text or "").lower())
    if not compact:
        raise DomainError("enter a duration such as 4h or 2d")
    if not _DURATION_RE.match(compact):
        raise DomainError(f"{text.strip()!r} is not a duration: use a number and w, d, h or m, e.g. 4h, 2d or 1d 4h")
    value = sum((int(n) * _DURATION_UNITS[unit] for n, unit in _DURATION_PART_RE.findall(compact)), start=timedelta())
    if value <= timedelta():
        raise DomainError("the duration must be longer than zero")
    if value > MAX_DURATION:
        raise DomainError("the duration must be at most 366 days")
    return value


def duration_label(value: timedelta | None) -> str:
    """The inverse of duration_parse: 28 hours -> '1d 4h' (whole minutes; seconds are never entered)."""
    if value is None:
        return ""
    minutes = int(value.total_seconds() // 60)
    parts = []
    for unit, size in (("d", 24 * 60), ("h", 60), ("m", 1)):
        if minutes >= size:
            parts.append(f"{minutes // size}{unit}")
            minutes %= size
    return " ".join(parts) or "0m"


@dataclass(frozen=True)
class ProcessStepInput:
    """One expected step as entered on the process page (positions are the order, unique within the process)."""

    position: int
    name: str
    kind_pattern: str
    allowance: timedelta
    system: str = ""
    required: bool = True


def correlation_key_problem(keys: list[str]) -> str | None:
    """Why these key types cannot link a process's events (None when they can); forms and services both ask."""
    broad = sorted(k for k in keys if k in BROAD_KEY_TYPES)
    if broad:
        # A customer or legal entity is shared by thousands of transactions: linking on it would merge them all.
        return (
            f"{', '.join(broad)} {'is a broad key' if len(broad) == 1 else 'are broad keys'}: shared by many "
            "transactions, so searchable but never a link"
        )
    bad = [k for k in keys if not _RULE_KEY_TYPE_RE.match(k)]
    if bad:
        return f"{', '.join(bad)}: key types are lower-case letters, digits and _, starting with a letter"
    if len(set(keys)) != len(keys):
        return "a key type is listed twice"
    return None


def process_step_problems(steps: list[ProcessStepInput]) -> list[str]:
    problems = []
    if not steps:
        problems.append("a process needs at least one step")
    positions = [s.position for s in steps]
    if len(set(positions)) != len(positions):
        problems.append("two steps have the same position")
    for step in steps:
        if not step.name.strip():
            problems.append(f"step {step.position} needs a name")
        if not step.kind_pattern.strip():
            problems.append(f"step {step.position} needs a kind pattern")
        if step.allowance <= timedelta() or step.allowance > MAX_DURATION:
            problems.append(f"step {step.position}: the allowance must be between 1 minute and 366 days")
    return problems


def _process_state(process: ProcessDefinition, steps: Iterable[ProcessStep]) -> dict[str, Any]:
    return {
        "slug": process.slug,
        "name": process.name,
        "description": process.description,
        "correlation_keys": list(process.correlation_keys or []),
        "is_active": process.is_active,
        "steps": [
            {
                "position": s.position,
                "name": s.name,
                "system": s.system,
                "kind_pattern": s.kind_pattern,
                "allowance": duration_label(s.allowance),
                "required": s.required,
            }
            for s in steps
        ],
    }


def process_snapshot(process: ProcessDefinition) -> dict[str, Any]:
    return _process_state(process, process.steps.order_by("position"))


def _process_apply(
    process: ProcessDefinition,
    *,
    name: str,
    description: str,
    correlation_keys: list[str],
    is_active: bool,
    steps: list[ProcessStepInput],
) -> list[ProcessStep]:
    keys = [k.strip().lower() for k in correlation_keys if k.strip()]
    problems = [p for p in [correlation_key_problem(keys)] if p] + process_step_problems(steps)
    if not name.strip():
        problems.insert(0, "the name is empty")
    if problems:
        raise DomainError("; ".join(problems))
    process.name = name.strip()
    process.description = description.strip()
    process.correlation_keys = keys
    process.is_active = is_active
    return [
        ProcessStep(
            position=s.position,
            name=s.name.strip(),
            system=s.system.strip(),
            kind_pattern=s.kind_pattern.strip(),
            allowance=s.allowance,
            required=s.required,
        )
        for s in sorted(steps, key=lambda s: s.position)
    ]


def _process_steps_replace(process: ProcessDefinition, steps: list[ProcessStep]) -> None:
    # Replaced, not updated in place: reordering would collide with the unique (process, position) on the way, and
    # nothing refers to a step row (transactions keep their next step as JSON).
    ProcessStep.objects.filter(process=process).delete()
    for step in steps:
        step.process = process
    ProcessStep.objects.bulk_create(steps)


@transaction.atomic
def process_definition_create(
    *,
    actor: str,
    slug: str,
    name: str,
    correlation_keys: list[str],
    steps: list[ProcessStepInput],
    description: str = "",
    is_active: bool = True,
) -> ProcessDefinition:
    """A new process Closeloop recognises from the next correlated batch on; existing transactions are unchanged."""
    slug = slug.strip()
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,59}", slug):
        raise DomainError("the slug is lower-case letters, digits, - and _ (e.g. order-to-cash)")
    if ProcessDefinition.objects.filter(slug=slug).exists():
        raise DomainError(f"a process with the slug {slug!r} exists already")
    process = ProcessDefinition(slug=slug)
    rows = _process_apply(
        process,
        name=name,
        description=description,
        correlation_keys=correlation_keys,
        is_active=is_active,
        steps=steps,
    )
    process.save()
    _process_steps_replace(process, rows)
    audit_record(actor=actor, action="process.created", obj=process, after=process_snapshot(process))
    return process


@transaction.atomic
def process_definition_update(
    *,
    process: ProcessDefinition,
    actor: str,
    name: str,
    correlation_keys: list[str],
    steps: list[ProcessStepInput],
    description: str = "",
    is_active: bool = True,
) -> ProcessDefinition:
    """Change a process and its steps; correlation uses them from the next batch on (history is not re-evaluated)."""
    process = ProcessDefinition.objects.select_for_update().get(pk=process.pk)
    before = process_snapshot(process)
    rows = _process_apply(
        process,
        name=name,
        description=description,
        correlation_keys=correlation_keys,
        is_active=is_active,
        steps=steps,
    )
    proposed = _process_state(process, rows)
    if proposed == before:
        return process
    process.save()
    _process_steps_replace(process, rows)
    audit_record(actor=actor, action="process.updated", obj=process, before=before, after=process_snapshot(process))
    return process

"""What becomes of a dead letter: an undecodable body kept for its sender to see, a replay (optionally repaired)
through the same validation again, a discard, and replaying many at once, each in its own transaction so that one
stale or already handled letter does not hold back the others (the same contract as bulk actions on cases)."""

from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from console.lib.audit import audit_record
from console.lib.errors import DomainError, StaleVersion
from transactions import cloudevents, native, otlp
from transactions.canonical import storable_json
from transactions.choices import Channel, DeadLetterStatus
from transactions.models import DeadLetter, IngestSource
from transactions.records import BodyDecodeError, DecodedRecord, JsonDict
from transactions.services.ingest import MAX_DEAD_LETTER_BODY, IngestOutcome, dead_letters_store, records_ingest

MAX_BULK_REPLAY = 500


def body_dead_letter(*, source: IngestSource, channel: str, body: bytes, reason: str) -> DeadLetter:
    """Keep an undecodable body (when small enough to keep) so that its sender can be shown what arrived."""
    kept = body[:MAX_DEAD_LETTER_BODY].decode("utf-8", errors="backslashreplace").replace("\x00", "\\x00")
    if len(body) > MAX_DEAD_LETTER_BODY:
        reason = f"{reason} (body of {len(body)} bytes; first {MAX_DEAD_LETTER_BODY} kept)"
    letter = DeadLetter(source=source, channel=channel, received_at=timezone.now(), reason=reason, raw_text=kept)
    with transaction.atomic():
        return DeadLetter.objects.get(pk=dead_letters_store([letter])[0])


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


@dataclass
class BulkReplayOutcome:
    """Per dead letter: how its replay went (`replayed`: id -> outcome text) or why it was not replayed."""

    replayed: dict[int, str] = field(default_factory=dict)
    failed: dict[int, str] = field(default_factory=dict)


def dead_letters_replay_bulk(*, versions: dict[int, int], actor: str) -> BulkReplayOutcome:
    """Replay each dead letter named (id -> the version the caller saw); each replay is audited by itself."""
    if len(versions) > MAX_BULK_REPLAY:
        raise DomainError(f"at most {MAX_BULK_REPLAY} dead letters per bulk replay")
    outcome = BulkReplayOutcome()
    letters = DeadLetter.objects.in_bulk(list(versions))
    for letter_id, version in sorted(versions.items()):
        letter = letters.get(letter_id)
        if letter is None:
            outcome.failed[letter_id] = "no such dead letter"
            continue
        try:
            dead_letter_replay(dead_letter=letter, actor=actor, expected_version=version)
        except DomainError as exc:
            outcome.failed[letter_id] = str(exc)
            continue
        letter.refresh_from_db(fields=["status", "last_replay_outcome"])
        if letter.status == DeadLetterStatus.REPLAYED:
            outcome.replayed[letter_id] = letter.last_replay_outcome
        else:
            outcome.failed[letter_id] = f"replay {letter.last_replay_outcome}"
    return outcome

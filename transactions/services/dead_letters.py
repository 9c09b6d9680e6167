"""Replaying many dead letters at once: each one through dead_letter_replay, in its own transaction, so that one stale
or already handled letter does not hold back the others (the same contract as bulk actions on cases)."""

from dataclasses import dataclass, field

from console.lib.errors import DomainError
from transactions.choices import DeadLetterStatus
from transactions.models import DeadLetter
from transactions.services.ingest import dead_letter_replay

MAX_BULK_REPLAY = 500


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

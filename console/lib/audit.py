"""The audit trail: append-only, hash-chained entries for every action by a person or by Closeloop.

Each entry stores the SHA-256 of its own canonical JSON (RFC 8785) and the hash of the entry before it, so an edited
entry no longer matches its hash and a deleted one breaks the next entry's link. Writers take the chain head under a
PostgreSQL advisory lock held until their transaction ends; call `audit_record` as the last write of the atomic block
so that the lock is short.
"""

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC
from typing import Any, TypeVar

import rfc8785
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models, transaction
from django.utils import timezone

from console.lib.errors import DomainError

GENESIS_HASH = "0" * 64
# Arbitrary constant identifying "the audit chain head" among the database's advisory locks.
AUDIT_CHAIN_LOCK_KEY = 0x436C6F73654C6F6F


class AppendOnlyError(Exception):
    """Audit entries are never changed or removed."""


class AuditEntry(models.Model):
    """One append-only, hash-chained record of an action."""

    occurred_at = models.DateTimeField(default=timezone.now)
    actor = models.CharField(max_length=200, help_text="user:<username> or system:<component>")
    action = models.CharField(max_length=100, help_text="dotted name, e.g. auth.login or case.assign")
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=100, blank=True)
    object_repr = models.CharField(max_length=300, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)

    class Meta:
        app_label = "console"
        ordering = ["id"]
        verbose_name_plural = "audit entries"
        indexes = [
            # An object's history on its page: WHERE object_type=? AND object_id=? ORDER BY id.
            models.Index(fields=["object_type", "object_id", "id"], name="audit_object_idx"),
            # Lineage and audit exports by time range.
            models.Index(fields=["occurred_at"], name="audit_time_idx"),
        ]

    def __str__(self) -> str:
        return f"#{self.pk} {self.action} by {self.actor}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AppendOnlyError("audit entries cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("audit entries cannot be deleted")

    def canonical_payload(self) -> dict[str, Any]:
        return {
            "occurred_at": self.occurred_at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": self.actor,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "object_repr": self.object_repr,
            "before": self.before,
            "after": self.after,
            "prev_hash": self.prev_hash,
        }

    def compute_hash(self) -> str:
        return hashlib.sha256(rfc8785.dumps(self.canonical_payload())).hexdigest()


def actor_for(user: Any) -> str:
    """The audit actor text for a Django user (or anonymous)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous"
    return f"user:{user.get_username()}"


def _json_safe(value: Any) -> Any:
    # Dates, decimals and UUIDs become strings; NUL is dropped because PostgreSQL jsonb cannot store it.
    if value is None:
        return None
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder).replace("\\u0000", ""))


def _lock_chain_head() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [AUDIT_CHAIN_LOCK_KEY])
    # SQLite runs IMMEDIATE transactions: the write lock is already held for the whole transaction.


def audit_record(
    *,
    actor: str,
    action: str,
    obj: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    object_repr: str = "",
    before: Any = None,
    after: Any = None,
) -> AuditEntry:
    """Append one entry to the chain inside the caller's atomic block (or its own, when called outside one)."""
    if obj is not None:
        object_type = object_type or obj._meta.label_lower
        object_id = object_id or obj.pk
        object_repr = object_repr or str(obj)
    with transaction.atomic():
        _lock_chain_head()
        head = AuditEntry.objects.order_by("-id").values_list("entry_hash", flat=True).first()
        entry = AuditEntry(
            occurred_at=timezone.now(),
            actor=actor[:200],
            action=action,
            object_type=object_type,
            object_id=str(object_id),
            object_repr=object_repr[:300],
            before=_json_safe(before),
            after=_json_safe(after),
            prev_hash=head or GENESIS_HASH,
        )
        entry.entry_hash = entry.compute_hash()
        entry.save(force_insert=True)
    return entry


def audit_delete(*, obj: models.Model, actor: str, action: str, before: Any) -> None:
    """Delete `obj` and record what it was, in the caller's atomic block (the entry outlives the row)."""
    object_type, object_id, object_repr = obj._meta.label_lower, obj.pk, str(obj)
    type(obj)._base_manager.filter(pk=object_id).delete()
    audit_record(
        actor=actor, action=action, object_type=object_type, object_id=object_id, object_repr=object_repr, before=before
    )


Snapshot = Callable[[Any], dict[str, Any]]
M = TypeVar("M", bound=models.Model)


@transaction.atomic
def audited_create(obj: M, *, actor: str, action: str, snapshot: Callable[[M], dict[str, Any]]) -> M:
    """Insert `obj` (already validated by the caller) and record what it is, in one atomic block."""
    obj.save(force_insert=True)
    audit_record(actor=actor, action=action, obj=obj, after=snapshot(obj))
    return obj


@transaction.atomic
def audited_update(
    obj: M, *, actor: str, action: str, snapshot: Callable[[M], dict[str, Any]], apply: Callable[[M], None]
) -> M:
    """Lock `obj`'s row, `apply` the change to the locked copy, save it and record before/after.

    `apply` validates (raising DomainError leaves nothing written) and sets fields; a change that alters nothing the
    snapshot shows writes neither the row nor an audit entry, so re-saving a form is not an event.
    """
    locked = type(obj)._base_manager.select_for_update().get(pk=obj.pk)
    before = snapshot(locked)
    apply(locked)
    after = snapshot(locked)
    if after == before:
        return locked
    locked.save()
    audit_record(actor=actor, action=action, obj=locked, before=before, after=after)
    return locked


@transaction.atomic
def audited_set_active(
    obj: M,
    *,
    actor: str,
    action_prefix: str,
    snapshot: Callable[[M], dict[str, Any]],
    is_active: bool,
    problems: Callable[[M], list[str]] | None = None,
) -> M:
    """Switch `is_active` and record `<prefix>.activated` / `<prefix>.deactivated`.

    `problems` lists what would make an activated object misbehave: rows saved before today's validation existed
    (or loaded as data) must be fixed before they start acting on live traffic.
    """

    def switch(locked: M) -> None:
        if is_active and problems is not None:
            found = problems(locked)
            if found:
                raise DomainError("fix this first: " + "; ".join(found))
        locked.is_active = is_active  # type: ignore[attr-defined]

    return audited_update(
        obj,
        actor=actor,
        action=f"{action_prefix}.activated" if is_active else f"{action_prefix}.deactivated",
        snapshot=snapshot,
        apply=switch,
    )


@dataclass(frozen=True)
class ChainBreak:
    entry_id: int
    reason: str


@dataclass(frozen=True)
class ChainReport:
    checked: int
    head_hash: str
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


def _entries_in_order(batch: int = 2000) -> Iterator[AuditEntry]:
    last_id = 0
    while True:
        chunk = list(AuditEntry.objects.filter(id__gt=last_id).order_by("id")[:batch])
        if not chunk:
            return
        yield from chunk
        last_id = chunk[-1].id


def audit_verify(*, expected_head: str | None = None) -> ChainReport:
    """Walk the chain from the start; report the first entry whose content or link does not match."""
    previous_hash = GENESIS_HASH
    previous_id: int | None = None
    checked = 0
    first_break: ChainBreak | None = None
    for entry in _entries_in_order():
        checked += 1
        if first_break is None:
            if entry.compute_hash() != entry.entry_hash:
                first_break = ChainBreak(entry.id, "content does not match its stored hash (entry was edited)")
            elif entry.prev_hash != previous_hash:
                after = f"entry #{previous_id}" if previous_id else "the start of the chain"
                first_break = ChainBreak(
                    entry.id, f"link to {after} is broken (an entry before it was deleted, inserted or edited)"
                )
        previous_hash, previous_id = entry.entry_hash, entry.id
    if first_break is None and expected_head and expected_head != previous_hash:
        first_break = ChainBreak(previous_id or 0, "head differs from the head kept outside the database")
    return ChainReport(checked=checked, head_hash=previous_hash, first_break=first_break)


def audit_history(*, obj: models.Model) -> models.QuerySet[AuditEntry]:
    """Entries about one object, oldest first."""
    return AuditEntry.objects.filter(object_type=obj._meta.label_lower, object_id=str(obj.pk)).order_by("id")


__all__ = [
    "GENESIS_HASH",
    "AppendOnlyError",
    "AuditEntry",
    "ChainReport",
    "actor_for",
    "audit_delete",
    "audit_history",
    "audit_record",
    "audit_verify",
    "audited_create",
    "audited_set_active",
    "audited_update",
]

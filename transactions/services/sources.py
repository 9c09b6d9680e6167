"""Ingest sources, their bearer tokens and their CloudEvents source aliases: created, revoked and checked here."""

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from console.lib.audit import audit_delete, audit_record, audited_create
from console.lib.errors import DomainError
from console.lib.memo import TopicMemo
from transactions.models import IngestSource, IngestToken, SourceAlias
from transactions.receivers import CREDENTIALS_TOPIC

TOKEN_PREFIX = "clt_"  # noqa: S105 - a public prefix that tells Closeloop tokens apart
# last_used_at is a hint for operators; writing it on every request would turn reads into writes.
TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _source_snapshot(source: IngestSource) -> dict[str, Any]:
    return {"name": source.name}


def _token_snapshot(token: IngestToken) -> dict[str, Any]:
    # The prefix identifies the token to people; the clear text is never recorded anywhere.
    return {"source": token.source.name, "prefix": token.prefix, "label": token.label}


@transaction.atomic
def ingest_source_create(*, name: str, actor: str, description: str = "") -> IngestSource:
    if IngestSource.objects.filter(name=name).exists():
        raise DomainError(f"an ingest source named {name!r} exists already")
    return audited_create(
        IngestSource(name=name, description=description),
        actor=actor,
        action="ingest_source.created",
        snapshot=_source_snapshot,
    )


@transaction.atomic
def ingest_token_create(*, source: IngestSource, actor: str, label: str = "") -> tuple[IngestToken, str]:
    """A new token for `source`; the clear text is returned once and only its hash is stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    instance = IngestToken(source=source, prefix=token[:12], digest=token_digest(token), label=label, created_by=actor)
    audited_create(instance, actor=actor, action="ingest_token.created", snapshot=_token_snapshot)
    return instance, token


@transaction.atomic
def ingest_token_revoke(*, token: IngestToken, actor: str) -> IngestToken:
    # Not an audited_update: a revocation is recorded by what it names (the source), not as a before/after pair.
    token = IngestToken.objects.select_for_update().get(pk=token.pk)
    if token.revoked_at is not None:
        return token
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    audit_record(actor=actor, action="ingest_token.revoked", obj=token, after={"source": token.source.name})
    return token


_CREDENTIALS = TopicMemo(CREDENTIALS_TOPIC)
_last_touched: dict[int, datetime] = {}


def _token_lookup(digest: str) -> tuple[int, IngestSource] | None:
    token = (
        IngestToken.objects.select_related("source")
        .filter(digest=digest, revoked_at__isnull=True, source__is_active=True)
        .first()
    )
    if token is None:
        return None
    if token.last_used_at is not None:
        _last_touched.setdefault(token.pk, token.last_used_at)
    return token.pk, token.source


def ingest_source_authenticate(*, raw_token: str) -> IngestSource | None:
    """The active source holding this bearer token, or None. Looked up once per process until a token or source
    changes (a revocation holds everywhere within a second: console.lib.memo); unknown tokens are looked up every
    time, so that a guesser cannot fill the memo."""
    if not raw_token.startswith(TOKEN_PREFIX):
        return None
    digest = token_digest(raw_token)
    found = _CREDENTIALS.get(digest, lambda: _token_lookup(digest))
    if found is None:
        _CREDENTIALS.discard(digest)
        return None
    token_id, source = found
    now = timezone.now()
    touched = _last_touched.get(token_id)
    if touched is None or now - touched > TOKEN_TOUCH_INTERVAL:
        _last_touched[token_id] = now
        IngestToken.objects.filter(pk=token_id).update(last_used_at=now)
    return source


# ---- Aliases ---------------------------------------------------------------------------------------------------------


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
    return audited_create(
        SourceAlias(source=source, pattern=pattern, system=system),
        actor=actor,
        action="source_alias.created",
        snapshot=source_alias_snapshot,
    )


@transaction.atomic
def source_alias_delete(*, alias: SourceAlias, actor: str) -> None:
    audit_delete(obj=alias, actor=actor, action="source_alias.deleted", before=source_alias_snapshot(alias))

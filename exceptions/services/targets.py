"""Replay targets and outbound webhooks as integration engineers and managers configure them: create, change (with
the version the change was based on: a stale one is a 409), disable, and a dry run that shows the exact request.

Secrets arrive in plain text (or as `env:NAME`) and are sealed before anything is stored (outbound.secret_seal); an
empty secret on a change keeps the stored one, `clear_*` removes it. The audit trail records where a secret comes
from and a keyed fingerprint (a rotation shows as a change), never the secret.
"""

from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.utils import timezone

from console.lib.audit import audited_create, audited_update
from console.lib.errors import DomainError, StaleVersion
from exceptions import outbound
from exceptions.choices import HttpMethod
from exceptions.models import OutboundWebhook, Replay, ReplayTarget
from exceptions.selectors import occurrence_latest_of_system
from exceptions.services.replays import occurrence_payload, replay_outbound_request
from exceptions.services.webhooks import webhook_outbound_request

WEBHOOK_EVENTS = ("assigned", "escalated", "reopened")
MAX_ATTEMPTS = 10
MAX_BUSINESS_KEY_PATHS = 5
# What a target's dry run sends when the system has no failed event yet: the shape of a canonical failed record.
SAMPLE_RECORD = {
    "occurred_at": "2026-01-31T09:30:00+00:00",
    "kind": "invoice.post",
    "business_keys": {"invoice": "INV-1001", "customer": "ACME-01"},
    "entity": "DE01",
    "amount": "1250.00",
    "currency": "EUR",
    "attributes": {"company_code": "1010"},
    "error": {"code": "HTTP:SERVICE_UNAVAILABLE", "message": "503 Service Unavailable", "type": "HttpError"},
}


def _url_checked(url: str) -> str:
    url = url.strip()
    try:
        URLValidator(schemes=["http", "https"])(url)
    except ValidationError as exc:
        raise DomainError(f"url: {url!r} is not an http(s) URL") from exc
    return url


def _sealed(value: str | None, current: str, *, clear: bool, noun: str) -> str:
    """The stored form of a secret field after a change: unchanged when no new value is given."""
    if clear:
        return ""
    if value is None or not value.strip():
        return current
    try:
        return outbound.secret_seal(value)
    except ValueError as exc:
        raise DomainError(f"{noun}: {exc}") from exc


def _attempts_checked(max_attempts: int) -> int:
    if not 1 <= max_attempts <= MAX_ATTEMPTS:
        raise DomainError(f"max_attempts: between 1 and {MAX_ATTEMPTS}")
    return max_attempts


def _bump_if_changed(obj: Any, *, actor: str, action: str, snapshot: Callable[[Any], dict], apply: Callable) -> Any:
    """audited_update, and a new version only when something the snapshot shows changed."""

    def change(locked: Any) -> None:
        before = snapshot(locked)
        apply(locked)
        if snapshot(locked) != before:
            locked.version += 1

    return audited_update(obj, actor=actor, action=action, snapshot=snapshot, apply=change)


def _version_check(expected_version: int | None) -> Callable[[Any], None]:
    def check(locked: Any) -> None:
        if expected_version is not None and locked.version != expected_version:
            raise StaleVersion(
                f"{locked} changed since you loaded it (version {expected_version}, now {locked.version}); reload"
            )

    return check


# ---- Replay targets -------------------------------------------------------------------------------------------------


def replay_target_snapshot(target: ReplayTarget) -> dict[str, Any]:
    return {
        "system": target.system,
        "url": target.url,
        "method": target.method,
        "auth": outbound.secret_fingerprint(target.auth_secret),
        "signing": outbound.secret_fingerprint(target.signing_secret),
        "business_key_paths": list(target.business_key_paths or []),
        "max_attempts": target.max_attempts,
        "is_active": target.is_active,
    }


def _paths_checked(paths: list[str]) -> list[str]:
    cleaned = [p.strip() for p in paths if p and p.strip()]
    if len(cleaned) > MAX_BUSINESS_KEY_PATHS:
        raise DomainError(f"business_key_paths: at most {MAX_BUSINESS_KEY_PATHS}")
    problems = [problem for p in cleaned if (problem := outbound.json_path_problem(p))]
    if problems:
        raise DomainError("business_key_paths: " + "; ".join(problems))
    return cleaned


def _target_apply(target: ReplayTarget, fields: dict[str, Any]) -> None:
    if "url" in fields:
        target.url = _url_checked(fields["url"])
    if "method" in fields:
        if fields["method"] not in HttpMethod.values:
            raise DomainError(f"method: one of {', '.join(HttpMethod.values)}")
        target.method = fields["method"]
    if "business_key_paths" in fields:
        target.business_key_paths = _paths_checked(list(fields["business_key_paths"] or []))
    if "max_attempts" in fields:
        target.max_attempts = _attempts_checked(int(fields["max_attempts"]))
    if "is_active" in fields:
        target.is_active = bool(fields["is_active"])
    target.auth_secret = _sealed(
        fields.get("auth_header"), target.auth_secret, clear=bool(fields.get("clear_auth_header")), noun="auth_header"
    )
    target.signing_secret = _sealed(
        fields.get("signing_secret"),
        target.signing_secret,
        clear=bool(fields.get("clear_signing_secret")),
        noun="signing_secret",
    )


@transaction.atomic
def replay_target_create(*, actor: str, system: str, url: str, **fields: Any) -> ReplayTarget:
    """A system's replay target; `auth_header` and `signing_secret` are sealed before they are stored."""
    system = system.strip()
    if not system or len(system) > 100:
        raise DomainError("system: the system's name as events carry it (service.name), e.g. sap-s4")
    if ReplayTarget.objects.filter(system=system).exists():
        raise DomainError(f"{system} has a replay target already; change that one")
    target = ReplayTarget(system=system)
    _target_apply(target, {"url": url, **fields})
    return audited_create(target, actor=actor, action="replay_target.created", snapshot=replay_target_snapshot)


@transaction.atomic
def replay_target_update(
    *, target: ReplayTarget, actor: str, expected_version: int | None, **fields: Any
) -> ReplayTarget:
    """Change the fields given; the system is the target's identity and never changes."""
    check = _version_check(expected_version)

    def apply(locked: ReplayTarget) -> None:
        check(locked)
        _target_apply(locked, fields)

    return _bump_if_changed(
        target, actor=actor, action="replay_target.updated", snapshot=replay_target_snapshot, apply=apply
    )


@transaction.atomic
def replay_target_set_active(
    *, target: ReplayTarget, actor: str, is_active: bool, expected_version: int | None = None
) -> ReplayTarget:
    """Disable (or enable again): a disabled target refuses new replays; replays in flight fail at their next
    attempt rather than going to a target someone switched off."""
    check = _version_check(expected_version)

    def apply(locked: ReplayTarget) -> None:
        check(locked)
        locked.is_active = is_active

    return _bump_if_changed(
        target,
        actor=actor,
        action="replay_target.activated" if is_active else "replay_target.deactivated",
        snapshot=replay_target_snapshot,
        apply=apply,
    )


def replay_target_dry_run(*, target: ReplayTarget, payload: dict | None = None) -> dict[str, Any]:
    """The exact request a replay to this target would send now, with secrets masked; nothing is sent or stored.
    The record is `payload`, else the system's latest failed event, else a sample record."""
    occurrence = occurrence_latest_of_system(system=target.system)
    source = "the payload given"
    if payload is None and occurrence is not None:
        payload = occurrence_payload(occurrence)
        source = f"occurrence {occurrence.pk} (the latest failed event of {target.system})"
    if payload is None:
        payload = {"system": target.system, **SAMPLE_RECORD}
        source = "a sample record (no failed event of this system is stored)"
    occurrence_id = occurrence.pk if occurrence is not None else 0
    replay = Replay(
        target_url=target.url,
        payload=payload,
        idempotency_key=outbound.replay_idempotency_key(occurrence_id=occurrence_id, payload=payload),
    )
    request = replay_outbound_request(replay=replay, target=target, timestamp=int(timezone.now().timestamp()))
    # The replay id is given when the replay is recorded; a dry run records nothing.
    request.headers["Closeloop-Replay-Id"] = "(the replay's id)"
    shown = request.masked()
    key = outbound.business_key(paths=list(target.business_key_paths or []), payload=payload)
    if target.business_key_paths and key is None:
        shown["problems"].append("the record lacks a value at one of the business key paths: it would not be deduped")
    shown.update(source=source, business_key=key.text if key else None, is_active=target.is_active)
    return shown


# ---- Outbound webhooks ----------------------------------------------------------------------------------------------


def webhook_snapshot(webhook: OutboundWebhook) -> dict[str, Any]:
    return {
        "name": webhook.name,
        "url": webhook.url,
        "events": list(webhook.events or []),
        "signing": outbound.secret_fingerprint(webhook.signing_secret),
        "max_attempts": webhook.max_attempts,
        "is_active": webhook.is_active,
    }


def _events_checked(events: list[str]) -> list[str]:
    unknown = sorted(set(events) - set(WEBHOOK_EVENTS))
    if unknown:
        raise DomainError(f"events: unknown {', '.join(unknown)}; use {', '.join(WEBHOOK_EVENTS)} (none: all)")
    return [e for e in WEBHOOK_EVENTS if e in events]


def _webhook_apply(webhook: OutboundWebhook, fields: dict[str, Any]) -> None:
    if "name" in fields:
        name = str(fields["name"]).strip()
        if not name or len(name) > 100:
            raise DomainError("name: 1 to 100 characters")
        webhook.name = name
    if "url" in fields:
        webhook.url = _url_checked(fields["url"])
    if "events" in fields:
        webhook.events = _events_checked(list(fields["events"] or []))
    if "max_attempts" in fields:
        webhook.max_attempts = _attempts_checked(int(fields["max_attempts"]))
    if "is_active" in fields:
        webhook.is_active = bool(fields["is_active"])
    webhook.signing_secret = _sealed(
        fields.get("signing_secret"),
        webhook.signing_secret,
        clear=bool(fields.get("clear_signing_secret")),
        noun="signing_secret",
    )


@transaction.atomic
def webhook_create(*, actor: str, name: str, url: str, **fields: Any) -> OutboundWebhook:
    webhook = OutboundWebhook()
    _webhook_apply(webhook, {"name": name, "url": url, **fields})
    return audited_create(webhook, actor=actor, action="webhook.created", snapshot=webhook_snapshot)


@transaction.atomic
def webhook_update(
    *, webhook: OutboundWebhook, actor: str, expected_version: int | None, **fields: Any
) -> OutboundWebhook:
    check = _version_check(expected_version)

    def apply(locked: OutboundWebhook) -> None:
        check(locked)
        _webhook_apply(locked, fields)

    return _bump_if_changed(webhook, actor=actor, action="webhook.updated", snapshot=webhook_snapshot, apply=apply)


@transaction.atomic
def webhook_set_active(
    *, webhook: OutboundWebhook, actor: str, is_active: bool, expected_version: int | None = None
) -> OutboundWebhook:
    check = _version_check(expected_version)

    def apply(locked: OutboundWebhook) -> None:
        check(locked)
        locked.is_active = is_active

    return _bump_if_changed(
        webhook,
        actor=actor,
        action="webhook.activated" if is_active else "webhook.deactivated",
        snapshot=webhook_snapshot,
        apply=apply,
    )


def webhook_dry_run(*, webhook: OutboundWebhook, event: str = "assigned") -> dict[str, Any]:
    """The exact request a notification would send now (a sample case), secrets masked; nothing is sent."""
    if event not in WEBHOOK_EVENTS:
        raise DomainError(f"event: one of {', '.join(WEBHOOK_EVENTS)}")
    body = {
        "event": event,
        "case": {
            "id": 1,
            "title": "Platform failure: sap-s4 order.create — 503 Service Unavailable",
            "status": "open",
            "priority": 2,
            "queue": "integration-platform",
            "assignee": None,
            "url": "/cases/1/",
        },
    }
    request = webhook_outbound_request(
        webhook=webhook,
        delivery_id="(the delivery's id)",
        event=event,
        body=body,
        timestamp=int(timezone.now().timestamp()),
    )
    shown = request.masked()
    if webhook.events and event not in webhook.events:
        shown["problems"].append(f"this webhook is not subscribed to {event}: it would not be sent")
    shown.update(source="a sample case", is_active=webhook.is_active)
    return shown


__all__ = [
    "WEBHOOK_EVENTS",
    "replay_target_create",
    "replay_target_dry_run",
    "replay_target_set_active",
    "replay_target_snapshot",
    "replay_target_update",
    "webhook_create",
    "webhook_dry_run",
    "webhook_set_active",
    "webhook_snapshot",
    "webhook_update",
]

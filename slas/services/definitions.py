"""Managers' writes to SLA definitions: create, update and (de)activate, with version checks; each audited."""

from datetime import timedelta
from typing import Any

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from console.lib.audit import audited_create, audited_update
from console.lib.errors import DomainError, StaleVersion
from slas.models import SlaDefinition

# What a manager may set (the API and the console form both pass these, by these names).
EDITABLE_FIELDS = (
    "slug",
    "name",
    "description",
    "process",
    "start_system",
    "start_kind",
    "start_status",
    "start_key_type",
    "stop_system",
    "stop_kind",
    "stop_status",
    "stop_key_type",
    "pause_conditions",
    "target",
    "calendar",
    "at_risk_percent",
    "breach_queue",
    "breach_category_slug",
    "is_active",
)


def sla_definition_snapshot(definition: SlaDefinition) -> dict[str, Any]:
    """The audited form of a definition: what a reader of the trail needs to see what changed."""
    return {
        "slug": definition.slug,
        "name": definition.name,
        "description": definition.description,
        "process": definition.process.slug if definition.process_id else None,
        "start": {
            "system": definition.start_system,
            "kind": definition.start_kind,
            "status": definition.start_status,
            "key_type": definition.start_key_type,
        },
        "stop": {
            "system": definition.stop_system,
            "kind": definition.stop_kind,
            "status": definition.stop_status,
            "key_type": definition.stop_key_type,
        },
        "pause_conditions": definition.pause_conditions,
        "target_seconds": int(definition.target.total_seconds()) if isinstance(definition.target, timedelta) else None,
        "calendar": definition.calendar.slug if definition.calendar_id else None,
        "at_risk_percent": definition.at_risk_percent,
        "breach_queue": definition.breach_queue.slug if definition.breach_queue_id else None,
        "breach_category": definition.breach_category_slug,
        "is_active": definition.is_active,
    }


def validation_text(exc: ValidationError) -> str:
    """One readable sentence of a model's validation errors (field: problem; ...)."""
    if not hasattr(exc, "error_dict"):
        return " ".join(exc.messages)
    parts = []
    for name, errors in exc.error_dict.items():
        text = " ".join(message for error in errors for message in error.messages)
        parts.append(text if name == NON_FIELD_ERRORS else f"{name}: {text}")
    return "; ".join(parts)


def _validate(definition: SlaDefinition) -> None:
    """The model's checks (matchers that could both match one event, pause conditions, ranges, unique slug)."""
    try:
        definition.full_clean()
    except ValidationError as exc:
        raise DomainError(validation_text(exc)) from exc


def _editable(fields: dict[str, Any]) -> None:
    unknown = set(fields) - set(EDITABLE_FIELDS)
    if unknown:
        raise DomainError(f"not editable: {', '.join(sorted(unknown))}")


def sla_definition_create(*, actor: str, **fields: Any) -> SlaDefinition:
    """A new definition, validated, with its `sla_definition.created` audit entry."""
    _editable(fields)
    definition = SlaDefinition(**fields)
    _validate(definition)
    return audited_create(definition, actor=actor, action="sla_definition.created", snapshot=sla_definition_snapshot)


def _check_version(locked: SlaDefinition, expected_version: int | None) -> None:
    if expected_version is not None and locked.version != expected_version:
        raise StaleVersion(
            f"this definition changed since version {expected_version} (now {locked.version}): reload it"
        )


def sla_definition_update(
    *, definition: SlaDefinition, actor: str, expected_version: int | None = None, **fields: Any
) -> SlaDefinition:
    """Change the given fields; a stale `expected_version` (someone saved in between) raises StaleVersion (409)."""
    _editable(fields)

    def apply(locked: SlaDefinition) -> None:
        _check_version(locked, expected_version)
        for name, value in fields.items():
            setattr(locked, name, value)
        _validate(locked)
        # Not in the snapshot: an edit that changes nothing keeps its version (and writes nothing).
        locked.version += 1

    return audited_update(
        definition, actor=actor, action="sla_definition.updated", snapshot=sla_definition_snapshot, apply=apply
    )


def sla_definition_set_active(
    *, definition: SlaDefinition, actor: str, is_active: bool, expected_version: int | None = None
) -> SlaDefinition:
    """Activate or deactivate (`sla_definition.activated` / `.deactivated`); a definition saved before today's checks
    (or loaded as data) must pass them before it runs on live traffic again."""

    def apply(locked: SlaDefinition) -> None:
        _check_version(locked, expected_version)
        if is_active:
            _validate(locked)
        locked.is_active = is_active
        locked.version += 1

    return audited_update(
        definition,
        actor=actor,
        action="sla_definition.activated" if is_active else "sla_definition.deactivated",
        snapshot=sla_definition_snapshot,
        apply=apply,
    )


__all__ = [
    "EDITABLE_FIELDS",
    "sla_definition_create",
    "sla_definition_set_active",
    "sla_definition_snapshot",
    "sla_definition_update",
    "validation_text",
]

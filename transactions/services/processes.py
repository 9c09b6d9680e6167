"""Process definitions: which kinds of transaction Closeloop recognises, the key types linking their events, and the
steps each expects (with the time allowed before a transaction counts as stalled).

Changes apply to batches correlated from then on; existing transactions are not re-evaluated.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction

from console.lib.audit import audited_create, audited_update
from console.lib.errors import DomainError
from transactions.canonical import KEY_TYPE_RE
from transactions.choices import BROAD_KEY_TYPES
from transactions.durations import MAX_DURATION, duration_label
from transactions.models import ProcessDefinition, ProcessStep

_SLUG_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,59}")


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
    bad = [k for k in keys if not KEY_TYPE_RE.match(k)]
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


def process_step_rows(steps: Iterable[ProcessStep]) -> list[dict[str, Any]]:
    """Steps as the console shows and edits them (the allowance as a duration label); audit entries record the same."""
    return [
        {
            "position": s.position,
            "name": s.name,
            "system": s.system,
            "kind_pattern": s.kind_pattern,
            "allowance": duration_label(s.allowance),
            "required": s.required,
        }
        for s in steps
    ]


def _process_state(process: ProcessDefinition, steps: Iterable[ProcessStep]) -> dict[str, Any]:
    return {
        "slug": process.slug,
        "name": process.name,
        "description": process.description,
        "correlation_keys": list(process.correlation_keys or []),
        "is_active": process.is_active,
        "steps": process_step_rows(steps),
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
    if not _SLUG_RE.fullmatch(slug):
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
    # The audit entry shows the steps as staged; they are inserted right after, in the same atomic block.
    audited_create(process, actor=actor, action="process.created", snapshot=lambda p: _process_state(p, rows))
    _process_steps_replace(process, rows)
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
    staged: list[ProcessStep] | None = None

    def apply(locked: ProcessDefinition) -> None:
        nonlocal staged
        staged = _process_apply(
            locked,
            name=name,
            description=description,
            correlation_keys=correlation_keys,
            is_active=is_active,
            steps=steps,
        )

    def snapshot(p: ProcessDefinition) -> dict[str, Any]:
        # Before the change: the stored steps; after it: the steps as staged, so that an unchanged form writes nothing.
        return process_snapshot(p) if staged is None else _process_state(p, staged)

    process = audited_update(process, actor=actor, action="process.updated", snapshot=snapshot, apply=apply)
    if staged is not None and process_snapshot(process) != _process_state(process, staged):
        _process_steps_replace(process, staged)
    return process

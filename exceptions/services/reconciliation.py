"""Cross-system reconciliation, the database side: evaluate the active rules on transactions, keep one result per
(rule, transaction, subject), and turn mismatches into `data_quality` cases through the signals.

Runs after correlation on the transactions a batch touched (exceptions/receivers.py) and from a periodic sweep over
recently active transactions, so a lost task only delays it. The cost follows the transactions given: their events
are read through the timeline index, and a unique rule looks its values up in `ReconciliationKey` by index, never by
scanning the store. Idempotent: a result that comes out as it is stored is not written again, and a mismatch is
signalled once per (values, events) it shows; a late event re-evaluates its transaction, and a correction that makes
the facts agree resolves the case (`signal_resolve`).
"""

import hashlib
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from console.lib.audit import audit_record
from console.lib.bulk import rows_update, rows_upsert, values_upsert
from console.lib.locks import advisory_lock_keys, key_bucket
from exceptions.choices import ActivityKind, Comparison, ReconciliationKind, ReconciliationStatus
from exceptions.models import Case, ReconciliationKey, ReconciliationResult, ReconciliationRule
from exceptions.reconciliation import (
    KEY_SEPARATOR,
    MISMATCHED,
    VALUE_MAX,
    Verdict,
    evaluate_compare,
    rate_lookup,
    rule_spec,
    shown,
    unique_keys,
)
from exceptions.selectors.reconciliation import fx_rates
from exceptions.services.cases import case_resolve_automatically
from exceptions.services.reconciliation_rollups import (
    reconciliation_days_mark_dirty,
    result_days,
    transaction_result_days,
)
from exceptions.services.signals import Signal, signals_record_isolated
from transactions import selectors as txn_selectors

logger = logging.getLogger(__name__)

ACTOR = "system:reconciliation"
CATEGORY = "data_quality"
# (namespace, key) advisory locks: one per transaction evaluated, one per (unique rule, value) looked up, so that two
# workers never both miss the duplicate the other is inserting.
LOCK_NAMESPACE = 0x5265636F  # "Reco"
AUDITED_RESULTS = 200
MERGE_HOPS = 10
CENT = Decimal("0.01")
RESULT_FIELDS = (
    "status",
    "reason",
    "left_value",
    "right_value",
    "left_event_id",
    "right_event_id",
    "left_system",
    "right_system",
    "entity",
    "amount_at_stake",
    "currency",
    "occurred_at",
)

# A new result's values, in the order they are stored.
CREATED_FIELDS = ("rule_id", "txn_id", "subject", *RESULT_FIELDS, "evaluated_at", "case_id", "signal_key")


@dataclass
class Wanted:
    """A result as this evaluation finds it, and the case signal it calls for."""

    txn_id: int
    rule: ReconciliationRule
    subject: str
    fields: dict[str, Any]
    signal: Signal | None = None
    fingerprint_parts: tuple[str, ...] = ()


def _digest(*parts: Any) -> str:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).hexdigest()[:16]


def _cents(value: Decimal | None) -> Decimal | None:
    return None if value is None else Decimal(value).quantize(CENT)


def _txn_documents(txn: dict) -> list[dict[str, Any]]:
    keys = txn.get("business_keys") or {}
    return [{**event, "entity": event["entity"] or "", "txn_keys": keys} for event in txn["events"]]


def _last_at(events: list[dict[str, Any]], now: datetime) -> datetime:
    return max((e["occurred_at"] for e in events), default=now)


def _rule_label(rule: ReconciliationRule) -> str:
    if rule.kind == ReconciliationKind.UNIQUE:
        return f"unique {rule.left_path}" + (f" within {rule.scope_path}" if rule.scope_path else "")
    label = Comparison(rule.comparison).label.split(" (")[0].lower()
    if rule.comparison in (Comparison.ABSOLUTE, Comparison.RELATIVE, Comparison.CURRENCY):
        label += f", tolerance {shown(Decimal(rule.tolerance))}"
    if rule.mapping_id:
        label += f", mapped through {rule.mapping.name}"
    return label


def _compare_wanted(rule: ReconciliationRule, txn: dict, events: list[dict], verdict: Verdict, now: datetime) -> Wanted:
    left, right = verdict.left, verdict.right
    used = [f.event for f in (left, right) if f is not None]
    entity = next((e["entity"] for e in (*reversed(used), *reversed(events)) if e.get("entity")), "")
    amount, currency = None, ""
    if verdict.status == MISMATCHED:
        if verdict.difference is not None:
            amount, currency = _cents(verdict.difference), verdict.currency
        else:
            # A code or an entity that disagrees puts the whole document at stake.
            carrier = next((e for e in reversed(used) if e.get("amount") is not None), None)
            if carrier is not None:
                amount, currency = _cents(carrier["amount"]), carrier.get("currency") or ""
    fields = {
        "status": verdict.status,
        "reason": verdict.reason[:VALUE_MAX],
        "left_value": (verdict.left_shown or (shown(left.value) if left else ""))[:VALUE_MAX],
        "right_value": (verdict.right_shown or (shown(right.value) if right else ""))[:VALUE_MAX],
        "left_event_id": left.event["id"] if left else None,
        "right_event_id": right.event["id"] if right else None,
        "left_system": left.event["system"] if left else "",
        "right_system": right.event["system"] if right else "",
        "entity": (entity or "")[:50],
        "amount_at_stake": amount,
        "currency": (currency or "")[:3],
        "occurred_at": max((e["occurred_at"] for e in used), default=_last_at(events, now)),
    }
    wanted = Wanted(txn_id=txn["id"], rule=rule, subject="", fields=fields)
    wanted.fingerprint_parts = ("reconciliation", str(rule.pk), str(txn["id"]))
    if verdict.status == MISMATCHED and left and right:
        message = (
            f"{rule.name} ({_rule_label(rule)}) on transaction {txn['id']}: "
            f"{left.event['system']} {left.event['kind']} {rule.left_path} = {fields['left_value']} | "
            f"{right.event['system']} {right.event['kind']} {rule.right_path} = {fields['right_value']}; "
            f"{verdict.reason}."
        )
        wanted.signal = Signal(
            signal_key=f"recon:{rule.pk}:{txn['id']}:"
            + _digest(fields["left_value"], fields["right_value"], left.event["id"], right.event["id"]),
            category_slug=CATEGORY,
            system=right.event["system"],
            kind=right.event["kind"],
            title=f"Mismatch: {rule.name} (transaction {txn['id']})"[:300],
            message=message,
            occurred_at=fields["occurred_at"],
            txn_id=txn["id"],
            entity=fields["entity"],
            fingerprint_parts=wanted.fingerprint_parts,
            amount=amount,
            currency=fields["currency"],
        )
    return wanted


def _unique_wanted(rule: ReconciliationRule, value: str, holders: list[ReconciliationKey]) -> list[Wanted]:
    """The results of every transaction holding `value` under a unique rule: matched while one event holds it, else
    mismatched in each, with the later events (the duplicates) signalled into one case per value."""
    holders = sorted(holders, key=lambda k: (k.occurred_at, k.event_id))
    first = holders[0]
    parts = ("reconciliation", str(rule.pk), _digest(value))
    found = []
    for txn_id in sorted({k.txn_id for k in holders}):
        mine = [k for k in holders if k.txn_id == txn_id]
        others = [k for k in holders if k.txn_id != txn_id] or mine[1:]
        duplicates = [k for k in mine if k is not first]
        mismatched = len(holders) > 1
        amount = sum((k.amount or Decimal(0) for k in duplicates), Decimal(0)) if duplicates else None
        currency = next((k.currency for k in duplicates if k.currency), "")
        other = others[0] if others else None
        fields = {
            "status": ReconciliationStatus.MISMATCHED if mismatched else ReconciliationStatus.MATCHED,
            "reason": (
                f"{len(holders)} events hold {value} (first: event {first.event_id} in transaction {first.txn_id})"
                if mismatched
                else "the only event holding it"
            )[:VALUE_MAX],
            "left_value": value[:VALUE_MAX],
            "right_value": (
                ", ".join(f"event {k.event_id} in transaction {k.txn_id}" for k in others[:5]) if mismatched else ""
            )[:VALUE_MAX],
            "left_event_id": mine[0].event_id,
            "right_event_id": other.event_id if mismatched and other else None,
            "left_system": mine[0].system,
            "right_system": other.system if mismatched and other else "",
            "entity": mine[0].entity,
            "amount_at_stake": _cents(amount) if mismatched and amount is not None else None,
            "currency": currency if mismatched and amount is not None else "",
            "occurred_at": max(k.occurred_at for k in mine),
        }
        wanted = Wanted(txn_id=txn_id, rule=rule, subject=value, fields=fields, fingerprint_parts=parts)
        if mismatched and duplicates:
            duplicate = duplicates[-1]
            wanted.signal = Signal(
                signal_key=f"recon:{rule.pk}:{_digest(value)}:{duplicate.event_id}",
                category_slug=CATEGORY,
                system=duplicate.system or rule.left_system or "closeloop",
                kind=rule.left_kind.split("|")[0][:200],
                title=f"Duplicate: {rule.name} ({value})"[:300],
                message=(
                    f"{rule.name} ({_rule_label(rule)}): {len(holders)} events hold {value}: "
                    + ", ".join(
                        f"event {k.event_id} in transaction {k.txn_id} at {k.occurred_at.isoformat()}"
                        for k in holders[:5]
                    )
                    + f"; the first is event {first.event_id} in transaction {first.txn_id}."
                ),
                occurred_at=duplicate.occurred_at,
                txn_id=txn_id,
                entity=duplicate.entity,
                fingerprint_parts=parts,
                amount=_cents(duplicate.amount),
                currency=duplicate.currency,
            )
        found.append(wanted)
    return found


def _follow_merges(facts: dict[int, dict]) -> tuple[dict[int, int], dict[int, dict]]:
    """Absorbed transaction -> the survivor at the end of its chain, and the facts of the live ones to evaluate."""
    survivor_of: dict[int, int] = {}
    pending = {t["id"]: t["merged_into_id"] for t in facts.values() if t["merged_into_id"]}
    for _ in range(MERGE_HOPS):
        if not pending:
            break
        missing = sorted(set(pending.values()) - set(facts))
        facts.update(txn_selectors.transaction_events_facts(txn_ids=missing))
        nxt = {}
        for absorbed, target in pending.items():
            row = facts.get(target)
            if row is not None and row["merged_into_id"] and row["merged_into_id"] != absorbed:
                nxt[absorbed] = row["merged_into_id"]
            else:
                survivor_of[absorbed] = target
        pending = nxt
    live = {i: t for i, t in facts.items() if not t["merged_into_id"]}
    return survivor_of, live


def _absorbed_clear(survivor_of: dict[int, int]) -> int:
    """Results of absorbed transactions go (their survivor is evaluated instead); their open mismatch cases resolve,
    and their unique keys move to the survivor."""
    resolved = 0
    gone = list(ReconciliationResult.objects.filter(txn_id__in=list(survivor_of)).select_related("rule").order_by("id"))
    for result in gone:
        if result.status == ReconciliationStatus.MISMATCHED:
            resolved += _result_resolve(
                result,
                ("reconciliation", str(result.rule_id), str(result.txn_id)),
                f"transaction {result.txn_id} merged into {survivor_of[result.txn_id]}, which is reconciled instead",
            )
    ReconciliationResult.objects.filter(pk__in=[r.pk for r in gone]).delete()
    reconciliation_days_mark_dirty(result_days(r.occurred_at for r in gone))
    for absorbed, survivor in survivor_of.items():
        ReconciliationKey.objects.filter(txn_id=absorbed).update(txn_id=survivor)
    return resolved


def _result_resolve(result: ReconciliationResult, parts: tuple[str, ...], note: str) -> int:
    """Resolve the case a mismatch opened. By the case the result names rather than by fingerprint: the fingerprint
    holds the system and kind of the events compared then, which a later event may have changed. A case merged into
    another by an operator is left to them (the survivor holds other occurrences too)."""
    if result.case_id is None or not Case.objects.filter(pk=result.case_id, merged_into__isnull=True).exists():
        return 0
    return int(
        case_resolve_automatically(
            case_id=result.case_id,
            actor=ACTOR,
            kind=ActivityKind.STATUS,
            body=note[:2000],
            data={"signal": "ended", "reason": "reconciled", "rule": result.rule_id, "parts": list(parts)},
        )
    )


def reconcile_transactions(txn_ids: list[int], *, now: datetime | None = None) -> dict[str, int]:
    """Evaluate the active reconciliation rules on these transactions (and on the survivors of merged ones); store
    the results, open or grow a `data_quality` case per mismatch and resolve the cases of mismatches that agree now.

    Idempotent: a second run with nothing new writes nothing. Returns counts: transactions evaluated, results by
    status (of this evaluation), `changed` (results written), `cases_signalled`, `cases_resolved`.
    """
    now = now or timezone.now()
    counts: Counter[str] = Counter(transactions=0, changed=0, cases_signalled=0, cases_resolved=0)
    for status in ReconciliationStatus.values:
        counts[status] = 0
    ids = sorted({int(i) for i in txn_ids})
    rules = list(ReconciliationRule.objects.filter(is_active=True).select_related("mapping").order_by("position", "id"))
    if not ids or not rules:
        return dict(counts)
    with transaction.atomic():
        advisory_lock_keys(LOCK_NAMESPACE, (key_bucket(f"txn:{i}") for i in ids))
        facts = txn_selectors.transaction_events_facts(txn_ids=ids)
        survivor_of, live = _follow_merges(facts)
        if survivor_of:
            counts["cases_resolved"] += _absorbed_clear(survivor_of)
            extra = sorted(set(live) - set(ids))
            advisory_lock_keys(LOCK_NAMESPACE, (key_bucket(f"txn:{i}") for i in extra))
        counts["transactions"] = len(live)
        wanted = _evaluate(rules, live, now)
        counts.update(_store(rules, live, wanted, now))
        for w in wanted:
            counts[w.fields["status"]] += 1
    if counts["changed"]:
        logger.info("exceptions.reconciled", extra=dict(counts))
    return dict(counts)


def _evaluate(rules: list[ReconciliationRule], live: dict[int, dict], now: datetime) -> list[Wanted]:
    rates = fx_rates() if any(r.comparison == Comparison.CURRENCY for r in rules) else rate_lookup([])
    documents = {txn_id: _txn_documents(txn) for txn_id, txn in live.items()}
    wanted: list[Wanted] = []
    for rule in rules:
        spec = rule_spec(rule)
        applicable = [t for t in live.values() if rule.process_id is None or rule.process_id == t["process_id"]]
        if rule.kind == ReconciliationKind.COMPARE:
            for txn in applicable:
                verdict = evaluate_compare(spec, documents[txn["id"]], rates)
                wanted.append(_compare_wanted(rule, txn, documents[txn["id"]], verdict, now))
            continue
        keys = [
            ReconciliationKey(
                rule=rule,
                value=value,
                txn_id=txn["id"],
                event_id=event["id"],
                occurred_at=event["occurred_at"],
                amount=event.get("amount"),
                currency=(event.get("currency") or "")[:3],
                system=event["system"][:100],
                entity=(event.get("entity") or "")[:50],
            )
            for txn in applicable
            for value, event in unique_keys(spec, documents[txn["id"]])
        ]
        values = sorted({k.value for k in keys})
        if not values:
            continue
        advisory_lock_keys(LOCK_NAMESPACE, (key_bucket(f"{rule.pk}:{v}") for v in values))
        rows_upsert(keys)
        holders: dict[str, list[ReconciliationKey]] = {}
        for start in range(0, len(values), 1000):
            for key in ReconciliationKey.objects.filter(rule=rule, value__in=values[start : start + 1000]):
                holders.setdefault(key.value, []).append(key)
        for value in values:
            wanted.extend(_unique_wanted(rule, value, holders[value]))
    return wanted


def _store(rules: list[ReconciliationRule], live: dict[int, dict], wanted: list[Wanted], now: datetime) -> Counter:
    counts: Counter[str] = Counter()
    rule_ids = [r.pk for r in rules]
    txn_ids = sorted(set(live) | {w.txn_id for w in wanted})
    existing: dict[tuple[int, int, str], ReconciliationResult] = {}
    for start in range(0, len(txn_ids), 1000):
        for row in ReconciliationResult.objects.filter(
            txn_id__in=txn_ids[start : start + 1000], rule_id__in=rule_ids
        ).select_related("rule"):
            existing[(row.txn_id, row.rule_id, row.subject)] = row
    seen: set[tuple[int, int, str]] = set()
    # New results as values (CREATED_FIELDS): a model instance per result cost more than storing it.
    creates: dict[tuple[int, int, str], dict[str, Any]] = {}
    updates: list[ReconciliationResult] = []
    changed_ids: list[int] = []
    signals: dict[tuple[int, int, str], Signal] = {}
    prior_times: set[datetime] = set()  # when the rows changed or removed here stood before
    for w in wanted:
        key = (w.txn_id, w.rule.pk, w.subject)
        if key in seen:
            continue
        seen.add(key)
        row = existing.get(key)
        # Signalled once per (values, events) shown; again only when the earlier attempt found no case.
        fresh = row is None or row.signal_key != (w.signal.signal_key if w.signal else "") or row.case_id is None
        if w.fields["status"] == ReconciliationStatus.MISMATCHED and w.signal is not None and fresh:
            signals[key] = w.signal
        if row is None:
            creates[key] = {
                "rule_id": w.rule.pk,
                "txn_id": w.txn_id,
                "subject": w.subject,
                **w.fields,
                "evaluated_at": now,
                "case_id": None,
                "signal_key": "",
            }
            continue
        if row.status == ReconciliationStatus.MISMATCHED and w.fields["status"] == ReconciliationStatus.MATCHED:
            counts["cases_resolved"] += _result_resolve(
                row,
                w.fingerprint_parts,
                f"{w.rule.name}: the facts agree now ({w.fields['left_value']} | {w.fields['right_value']}; "
                f"{w.fields['reason']})",
            )
        if any(getattr(row, name) != value for name, value in w.fields.items()):
            prior_times.add(row.occurred_at)
            for name, value in w.fields.items():
                setattr(row, name, value)
            row.evaluated_at = now
            updates.append(row)
    # Unique-rule results of these transactions whose value no event of theirs holds any more (a rule edited).
    stale = [
        row
        for key, row in existing.items()
        if key not in seen and key[0] in live and row.rule.kind == ReconciliationKind.UNIQUE
    ]
    for row in stale:
        if row.status == ReconciliationStatus.MISMATCHED:
            counts["cases_resolved"] += _result_resolve(
                row, (), f"{row.rule.name}: no event of transaction {row.txn_id} holds {row.subject} any more"
            )
    recorded = signals_record_isolated(
        list(signals.values()), actor=ACTOR, log_event="exceptions.reconciliation_case_failed"
    )
    counts["cases_signalled"] = len(recorded)
    case_of_parts = {
        w.fingerprint_parts: recorded[w.signal.signal_key]
        for w in wanted
        if w.signal and w.signal.signal_key in recorded
    }
    for w in wanted:
        key = (w.txn_id, w.rule.pk, w.subject)
        case = case_of_parts.get(w.fingerprint_parts) if w.fields["status"] == ReconciliationStatus.MISMATCHED else None
        if case is None:
            continue
        created = creates.get(key)
        if created is not None:
            if w.signal and key in signals:
                created["signal_key"] = w.signal.signal_key
            created["case_id"] = case.pk
            continue
        row = existing[key]
        signal_key = w.signal.signal_key if w.signal and key in signals else row.signal_key
        if row.case_id != case.pk or row.signal_key != signal_key:
            row.case_id, row.signal_key = case.pk, signal_key
            if row not in updates:
                row.evaluated_at = now
                updates.append(row)
    if creates:
        values_upsert(
            ReconciliationResult,
            CREATED_FIELDS,
            [[fields[name] for name in CREATED_FIELDS] for fields in creates.values()],
            unique_fields=["txn", "rule", "subject"],
            update_fields=[*RESULT_FIELDS, "evaluated_at", "case", "signal_key"],
        )
    if updates:
        rows_update(updates, [*RESULT_FIELDS, "evaluated_at", "case", "signal_key"])
        changed_ids = [r.pk for r in updates]
    if stale:
        ReconciliationResult.objects.filter(pk__in=[r.pk for r in stale]).delete()
    counts["changed"] = len(creates) + len(updates) + len(stale)
    recounted = {r["txn_id"] for r in creates.values()} | {r.txn_id for r in updates} | {r.txn_id for r in stale}
    if recounted:
        # Updates that only link a case change no figure, but marking their days costs as little as telling them
        # apart; the stale rows' days are gone from the table, so they come from the rows held here.
        prior_times.update(r.occurred_at for r in stale)
        reconciliation_days_mark_dirty(result_days(prior_times) | transaction_result_days(recounted), now=now)
    if counts["changed"]:
        # One entry per batch, like classification's: the results are the record, the entry says who changed them.
        audit_record(
            actor=ACTOR,
            action="reconciliation.evaluated",
            object_type=ReconciliationResult._meta.label_lower,
            after={
                "transactions": sorted(live)[:AUDITED_RESULTS],
                "created": len(creates),
                "updated": len(updates),
                "removed": len(stale),
                "updated_ids": changed_ids[:AUDITED_RESULTS],
                "mismatched": sum(1 for w in wanted if w.fields["status"] == ReconciliationStatus.MISMATCHED),
            },
        )
    return counts


def reconciliation_sweep(*, since: datetime, limit: int = 5000) -> dict[str, int]:
    """Periodic: re-evaluate the transactions active since `since` (a lost task, an FX rate or mapping entry added
    since); idempotent, so what agrees with its stored result costs a read."""
    ids = txn_selectors.transaction_ids_active_since(since=since, limit=limit)
    totals: Counter[str] = Counter()
    for start in range(0, len(ids), 500):
        totals.update(reconcile_transactions(ids[start : start + 500]))
    return dict(totals)


__all__ = ["KEY_SEPARATOR", "reconcile_transactions", "reconciliation_sweep"]

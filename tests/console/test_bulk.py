"""Bulk writes (console.lib.bulk): the rows stored are the rows given, on PostgreSQL (binary COPY) as on SQLite."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from console.lib.bulk import rows_copy, rows_create, rows_upsert, values_copy, values_rows, values_upsert
from transactions.models import System, Transaction, TransactionKey

AT = datetime(2026, 5, 18, 10, 15, tzinfo=UTC)


def _txn(**fields) -> Transaction:
    return Transaction(started_at=AT, last_event_at=AT, **fields)


def test_created_rows_get_their_keys_in_order_and_read_back_equal(db):
    earlier = Transaction.objects.create(started_at=AT, last_event_at=AT)
    txns = [
        _txn(event_count=3, systems=["sap-s4"], business_keys={"order": ["42"]}, step_facts={"a|b": {"count": 1}}),
        _txn(next_step={"name": "invoice"}, next_due_at=AT + timedelta(hours=2), status="stalled"),
        _txn(),
    ]
    rows_create(txns)
    assert [t.pk for t in txns] == sorted(t.pk for t in txns)
    assert txns[0].pk > earlier.pk
    assert all(not t._state.adding for t in txns)
    for txn in txns:
        stored = Transaction.objects.get(pk=txn.pk)
        for field in ("status", "started_at", "event_count", "systems", "business_keys", "step_facts", "next_step"):
            assert getattr(stored, field) == getattr(txn, field), field
        assert stored.next_due_at == txn.next_due_at
        assert stored.created_at is not None and stored.updated_at is not None  # auto_now fields filled in
    # The sequence moved past the keys taken: the next row the ORM inserts does not collide.
    assert Transaction.objects.create(started_at=AT, last_event_at=AT).pk > txns[-1].pk


def test_copied_rows_take_the_key_of_an_object_saved_after_it_was_assigned(db):
    txn = _txn()
    keys = [TransactionKey(txn=txn, key_type="order", value="42"), TransactionKey(txn=txn, key_type="customer")]
    keys[1].value, keys[1].correlates = "ACME", False
    rows_create([txn])
    rows_copy(keys)
    stored = set(TransactionKey.objects.values_list("txn_id", "key_type", "value", "correlates"))
    assert stored == {(txn.pk, "order", "42", True), (txn.pk, "customer", "ACME", False)}


def test_a_naive_time_is_stored_as_django_stores_it(db):
    naive = datetime(2026, 5, 18, 10, 15)
    txn = Transaction(started_at=naive, last_event_at=AT)
    reference = Transaction(started_at=naive, last_event_at=AT)
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        rows_create([txn])
        reference.save()
    assert Transaction.objects.get(pk=txn.pk).started_at == Transaction.objects.get(pk=reference.pk).started_at


def test_upsert_inserts_new_rows_and_updates_the_named_fields_of_conflicting_ones(db):
    old = System.objects.create(name="sap-s4", first_seen_at=AT, last_seen_at=AT, notes="kept")
    later = AT + timedelta(days=1)
    rows_upsert(
        [
            System(name="sap-s4", first_seen_at=later, last_seen_at=later, notes="not written"),
            System(name="zuora-billing", first_seen_at=later, last_seen_at=later),
        ],
        unique_fields=["name"],
        update_fields=["last_seen_at"],
    )
    old.refresh_from_db()
    assert (old.first_seen_at, old.last_seen_at, old.notes) == (AT, later, "kept")
    assert System.objects.get(name="zuora-billing").first_seen_at == later
    # Twice in one transaction (the staging table is reused), and without update fields a conflict is skipped.
    rows_upsert([System(name="sap-s4", first_seen_at=AT, last_seen_at=AT + timedelta(days=9))])
    rows_upsert([System(name="stripe", first_seen_at=AT, last_seen_at=AT)])
    old.refresh_from_db()
    assert old.last_seen_at == later
    assert sorted(System.objects.values_list("name", flat=True)) == ["sap-s4", "stripe", "zuora-billing"]


def test_values_rows_reads_what_the_orm_reads(db):
    txn = Transaction.objects.create(
        started_at=AT, last_event_at=timezone.now(), business_keys={"order": ["42"]}, next_step=None
    )
    query = Transaction.objects.filter(pk__in=[txn.pk]).values_list(
        "id", "started_at", "last_event_at", "business_keys", "next_step", "event_count"
    )
    assert values_rows(query) == list(query)
    assert values_rows(Transaction.objects.filter(pk__in=[]).values_list("id")) == []


def test_values_go_in_as_given_and_other_types_through_their_field(db):
    txn = Transaction.objects.create(started_at=AT, last_event_at=AT)
    values_copy(TransactionKey, ("txn_id", "key_type", "value", "correlates"), [(txn.pk, "order", 42, True)])
    assert TransactionKey.objects.get().value == "42"  # an int for a text column is prepared as save() would
    later = AT + timedelta(days=1)
    names = ("name", "first_seen_at", "last_seen_at", "owner_team", "owner_queue", "criticality", "style")
    names += ("environment", "data_objects", "notes", "version")
    values_upsert(
        System,
        names,
        [("sap-s4", AT, AT, "", "", "", "", "", [], "", 1), ("sap-s4x", AT, AT, "", "", "", "", "", ["order"], "", 1)],
    )
    values_upsert(
        System,
        names,
        [("sap-s4", later, later, "", "", "", "", "", [], "", 1)],
        unique_fields=["name"],
        update_fields=["last_seen_at"],
    )
    assert list(System.objects.values_list("name", "first_seen_at", "last_seen_at", "data_objects")) == [
        ("sap-s4", AT, later, []),
        ("sap-s4x", AT, AT, ["order"]),
    ]

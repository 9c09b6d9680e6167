import threading

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction

from console.lib.audit import GENESIS_HASH, AppendOnlyError, AuditEntry, audit_record, audit_verify
from tests.factories import audit_tamper


def _three_entries() -> list[AuditEntry]:
    return [audit_record(actor="user:alice", action=f"test.step{i}", object_type="t", object_id=i) for i in range(3)]


@pytest.mark.django_db
def test_entries_form_a_chain_from_genesis():
    existing = AuditEntry.objects.order_by("id")  # setting up the role groups is itself audited
    assert existing.first().prev_hash == GENESIS_HASH
    head_before = existing.last().entry_hash
    first, second, third = _three_entries()
    assert first.prev_hash == head_before
    assert second.prev_hash == first.entry_hash
    assert third.prev_hash == second.entry_hash
    report = audit_verify()
    assert report.ok
    assert report.head_hash == third.entry_hash
    assert report.checked == AuditEntry.objects.count()


@pytest.mark.django_db
def test_edited_entry_is_found_at_its_row():
    _, second, _ = _three_entries()
    audit_tamper("UPDATE console_auditentry SET actor = %s WHERE id = %s", ["user:mallory", second.id])
    report = audit_verify()
    assert not report.ok
    assert report.first_break.entry_id == second.id
    assert "edited" in report.first_break.reason


@pytest.mark.django_db
def test_deleted_entry_is_found_at_the_next_row():
    first, second, third = _three_entries()
    audit_tamper("DELETE FROM console_auditentry WHERE id = %s", [second.id])
    report = audit_verify()
    assert report.first_break.entry_id == third.id
    assert f"entry #{first.id}" in report.first_break.reason


@pytest.mark.django_db
def test_deleted_head_is_found_against_the_kept_head():
    *_, third = _three_entries()
    kept_head = audit_verify().head_hash
    audit_tamper("DELETE FROM console_auditentry WHERE id = %s", [third.id])
    assert audit_verify().ok  # without the kept head, truncation of the tail cannot be seen
    assert not audit_verify(expected_head=kept_head).ok


@pytest.mark.django_db
def test_verify_audit_command_exit_codes(capsys):
    _, second, third = _three_entries()
    call_command("verify_audit")
    out = capsys.readouterr().out
    assert "intact" in out and third.entry_hash in out
    audit_tamper("UPDATE console_auditentry SET after = %s WHERE id = %s", ['{"x": 1}', second.id])
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit")
    assert exit_info.value.code == 1
    assert f"#{second.id}" in capsys.readouterr().err


@pytest.mark.django_db
def test_models_refuse_change_and_delete():
    entry = audit_record(actor="system:test", action="test.once")
    entry.actor = "someone else"
    with pytest.raises(AppendOnlyError):
        entry.save()
    with pytest.raises(AppendOnlyError):
        entry.delete()


@pytest.mark.django_db
def test_values_are_normalised_before_hashing():
    from decimal import Decimal

    entry = audit_record(actor="system:test", action="test.values", after={"amount": Decimal("1.50"), "s": "a\x00b"})
    entry.refresh_from_db()
    assert entry.after == {"amount": "1.50", "s": "ab"}
    assert audit_verify().ok


@pytest.mark.postgres
@pytest.mark.django_db
def test_trigger_rejects_update_and_delete_on_postgres():
    from django.db import InternalError, ProgrammingError

    entry = audit_record(actor="system:test", action="test.protected")
    for sql in (
        "UPDATE console_auditentry SET actor = 'x' WHERE id = %s",
        "DELETE FROM console_auditentry WHERE id = %s",
    ):
        with pytest.raises((InternalError, ProgrammingError)), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, [entry.id])
    assert AuditEntry.objects.filter(id=entry.id, actor="system:test").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_never_fork_the_chain():
    writers, per_writer = 6, 15
    barrier = threading.Barrier(writers)
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            barrier.wait()
            for i in range(per_writer):
                with transaction.atomic():
                    audit_record(actor=f"system:writer{n}", action="test.concurrent", object_id=i)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    prev_hashes = list(AuditEntry.objects.filter(action="test.concurrent").values_list("prev_hash", flat=True))
    assert len(prev_hashes) == writers * per_writer
    assert len(set(prev_hashes)) == len(prev_hashes), "two entries claim the same predecessor: the chain forked"
    assert audit_verify().ok


@pytest.mark.django_db
def test_the_admin_shows_audit_entries_read_only(client):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    audit_record(actor="system:test", action="case.assign", object_type="exceptions.case", object_id=7)
    client.force_login(admin)
    listing = client.get("/admin/console/auditentry/")
    assert listing.status_code == 200 and "case.assign" in listing.content.decode()
    assert client.get("/admin/console/auditentry/add/").status_code == 403
    entry = AuditEntry.objects.get(action="case.assign")
    assert client.post(f"/admin/console/auditentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert AuditEntry.objects.filter(pk=entry.pk).exists()


@pytest.mark.postgres
@pytest.mark.django_db
def test_trigger_rejects_truncate_on_postgres():
    from django.db import InternalError, ProgrammingError

    entry = audit_record(actor="system:test", action="test.protected")
    with connection.cursor() as cursor:
        # Off in the test database only, so that transactional tests can flush (tests/conftest.py); on, as migrated.
        cursor.execute("ALTER TABLE console_auditentry ENABLE TRIGGER audit_no_truncate")
    with pytest.raises((InternalError, ProgrammingError)), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE console_auditentry")
    assert AuditEntry.objects.filter(id=entry.id).exists()


@pytest.mark.django_db
def test_verify_audit_refuses_an_empty_chain_when_the_last_check_saw_entries(capsys):
    from console.services import audit_chain_check_record

    audit_record(actor="system:test", action="test.one")
    check = audit_chain_check_record(actor="system:test")
    assert check.ok and check.checked > 0
    call_command("verify_audit")  # intact: same or more entries than the check saw
    audit_tamper("DELETE FROM console_auditentry", [])
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_audit")
    assert exit_info.value.code == 1
    assert "the table is empty" in capsys.readouterr().err

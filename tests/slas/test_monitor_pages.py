"""The /slas/monitors/ pages: list with state, detail, audited create and edit, refusals."""

from datetime import timedelta

import pytest

from console.lib.audit import AuditEntry
from slas.models import EvidenceMonitor, VolumeMonitor
from slas.services.monitors import evidence_monitor_create, volume_monitor_create


@pytest.fixture
def ipaas(reference, calendar) -> VolumeMonitor:
    return volume_monitor_create(
        actor="test",
        slug="ipaas-silent",
        name="iPaaS silent",
        system="mulesoft-ipaas",
        kind="*",
        calendar=calendar,
        mode="window",
        window=timedelta(minutes=30),
        min_count=1,
    )


@pytest.fixture
def journal(reference, calendar) -> EvidenceMonitor:
    return evidence_monitor_create(
        actor="test",
        slug="journal-evidence",
        name="Journal evidence",
        trigger_system="sap-s4",
        trigger_kind="*journalentry*",
        evidence_kind="evidence.captured",
        window=timedelta(hours=24),
        calendar=calendar,
    )


def volume_form(calendar, **overrides) -> dict:
    form = {
        "slug": "stripe-silent",
        "name": "Stripe silent",
        "system": "stripe-payments",
        "kind": "*",
        "entity": "",
        "calendar": calendar.pk,
        "mode": "window",
        "window": "2h",
        "deadline_time": "",
        "min_count": "1",
        "max_count": "",
        "working_hours_only": "on",
        "queue": "",
        "category_slug": "platform",
        "is_active": "on",
    }
    return {**form, **overrides}


def test_the_list_shows_both_kinds_with_their_state(client, role_user, ipaas, journal):
    VolumeMonitor.objects.filter(pk=ipaas.pk).update(currently_violated=True, last_count=0)
    client.force_login(role_user("integration"))
    page = client.get("/slas/monitors/").content.decode()
    assert "iPaaS silent" in page and "Journal evidence" in page and "last count 0" in page
    assert "New volume monitor" not in page  # integration reads, managers edit
    only = client.get("/slas/monitors/", {"violated": "true"}).content.decode()
    assert "iPaaS silent" in only and "Journal evidence" not in only
    detail = client.get(f"/slas/monitors/evidence/{journal.pk}/").content.decode()
    assert "No trigger seen yet" in detail and "evidence.captured within 1 day" in detail


def test_a_manager_creates_and_edits_a_monitor_and_each_change_is_audited(client, role_user, ipaas, calendar):
    client.force_login(role_user("manager"))
    answer = client.post("/slas/monitors/volume/new/", volume_form(calendar))
    created = VolumeMonitor.objects.get(slug="stripe-silent")
    assert answer.status_code == 302 and answer["Location"] == f"/slas/monitors/volume/{created.pk}/"
    assert created.window == timedelta(hours=2) and created.version == 1
    answer = client.post(
        f"/slas/monitors/volume/{created.pk}/edit/", volume_form(calendar, window="3h", version=created.version)
    )
    assert answer.status_code == 302
    created.refresh_from_db()
    assert (created.window, created.version) == (timedelta(hours=3), 2)
    entry = AuditEntry.objects.get(action="volume_monitor.updated", object_id=str(created.pk))
    assert (entry.before["window"], entry.after["window"]) == (7200.0, 10800.0)
    # A stale version: the form says so and nothing changes.
    answer = client.post(f"/slas/monitors/volume/{created.pk}/edit/", volume_form(calendar, window="4h", version=1))
    assert answer.status_code == 200 and "changed since version 1" in answer.content.decode()
    created.refresh_from_db()
    assert created.window == timedelta(hours=3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"window": ""}, "a window monitor needs a window longer than zero"),
        ({"mode": "daily_deadline", "window": ""}, "a daily monitor needs the local time"),
        ({"min_count": "5", "max_count": "2"}, "the maximum must not be below the minimum"),
        ({"window": "soon"}, "soon"),
    ],
)
def test_bad_input_is_shown_on_the_form_and_nothing_is_saved(
    client, role_user, calendar, reference, overrides, message
):
    client.force_login(role_user("manager"))
    entries = AuditEntry.objects.count()
    answer = client.post("/slas/monitors/volume/new/", volume_form(calendar, **overrides))
    assert answer.status_code == 200
    assert message in answer.content.decode()
    assert not VolumeMonitor.objects.exists() and AuditEntry.objects.count() == entries


def test_an_evidence_monitor_that_would_prove_itself_is_refused(client, role_user, calendar, reference):
    client.force_login(role_user("manager"))
    answer = client.post(
        "/slas/monitors/evidence/new/",
        {
            "slug": "self",
            "name": "Self",
            "trigger_kind": "evidence.captured",
            "evidence_kind": "evidence.captured",
            "direction": "after",
            "window": "24h",
            "calendar": calendar.pk,
            "category_slug": "control",
            "is_active": "on",
        },
    )
    assert answer.status_code == 200 and "it would prove itself" in answer.content.decode()
    assert not EvidenceMonitor.objects.exists()


@pytest.mark.parametrize("role", ["finance_ops", "compliance", "integration"])
def test_roles_that_may_not_edit_get_403(client, role_user, ipaas, calendar, role):
    client.force_login(role_user(role))
    assert client.get("/slas/monitors/volume/new/").status_code == 403
    answer = client.post(f"/slas/monitors/volume/{ipaas.pk}/edit/", volume_form(calendar, window="9h", version=1))
    assert answer.status_code == 403
    ipaas.refresh_from_db()
    assert ipaas.window == timedelta(minutes=30)

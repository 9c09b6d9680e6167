"""GET /api/v1/monitors/ (both kinds), each kind's list and detail, and manager writes with version checks."""

from datetime import timedelta

import pytest

from console.lib.audit import AuditEntry
from slas.choices import EvidenceCheckStatus
from slas.models import EvidenceCheck, EvidenceMonitor, VolumeMonitor
from slas.services.monitors import evidence_monitor_create, volume_monitor_create
from transactions.models import Transaction

from .conftest import MONDAY

JOURNAL = "sap.s4.beh.journalentry.v1.JournalEntry.Created.v1"


@pytest.fixture
def monitors(reference, calendar):
    made = {}
    for slug, system in (("a-ipaas", "mulesoft-ipaas"), ("c-stripe", "stripe-payments"), ("e-sap", "sap-s4")):
        made[slug] = volume_monitor_create(
            actor="test",
            slug=slug,
            name=f"{system} silent",
            system=system,
            kind="*",
            calendar=calendar,
            mode="window",
            window=timedelta(minutes=30),
            min_count=1,
        )
    made["b-evidence"] = evidence_monitor_create(
        actor="test",
        slug="b-evidence",
        name="Journal evidence",
        trigger_system="sap-s4",
        trigger_kind=JOURNAL,
        evidence_system="compliance-vault",
        evidence_kind="evidence.captured",
        window=timedelta(hours=24),
        calendar=calendar,
    )
    made["d-approval"] = evidence_monitor_create(
        actor="test",
        slug="d-approval",
        name="Approval before bank change",
        trigger_kind="vendor.bank_details.changed",
        evidence_approval_step="vendor-master-approval",
        direction="before",
        window=timedelta(hours=40),
        calendar=calendar,
        is_active=False,
    )
    VolumeMonitor.objects.filter(slug="c-stripe").update(currently_violated=True, violated_since=MONDAY)
    txn = Transaction.objects.create(started_at=MONDAY, last_event_at=MONDAY)
    EvidenceCheck.objects.create(
        monitor=made["b-evidence"],
        txn=txn,
        trigger_event_id=1,
        trigger_at=MONDAY,
        trigger_kind=JOURNAL,
        due_at=MONDAY,
        status=EvidenceCheckStatus.MISSING,
        decided_at=MONDAY.replace(year=2099),  # within "the last 7 days" whenever the test runs
    )
    return made


@pytest.fixture
def api(client, role_user):
    def login(role: str):
        client.force_login(role_user(role))
        return client

    return login


def test_the_combined_list_has_both_kinds_by_slug_with_cursor_pages(api, monitors):
    client = api("finance_ops")
    first = client.get("/api/v1/monitors/", {"page_size": 2}).json()
    assert [(r["type"], r["slug"]) for r in first["results"]] == [("volume", "a-ipaas"), ("evidence", "b-evidence")]
    second = client.get(first["next"]).json()
    assert [r["slug"] for r in second["results"]] == ["c-stripe", "d-approval"]
    third = client.get(second["next"]).json()
    assert [r["slug"] for r in third["results"]] == ["e-sap"] and third["next"] is None
    row = first["results"][1]
    assert row["violated"] is True and row["url"].endswith(f"/api/v1/monitors/evidence/{monitors['b-evidence'].pk}/")
    assert "evidence.captured within 1 day" in row["summary"]


@pytest.mark.parametrize(
    ("query", "slugs"),
    [
        ({"type": "volume"}, ["a-ipaas", "c-stripe", "e-sap"]),
        ({"violated": "true"}, ["b-evidence", "c-stripe"]),
        ({"violated": "false", "type": "evidence"}, ["d-approval"]),
        ({"is_active": "false"}, ["d-approval"]),
        ({"q": "silent"}, ["a-ipaas", "c-stripe", "e-sap"]),
        ({"category": "control"}, ["b-evidence", "d-approval"]),
    ],
)
def test_the_combined_list_filters(api, monitors, query, slugs):
    body = api("compliance").get("/api/v1/monitors/", query).json()
    assert [r["slug"] for r in body["results"]] == slugs


def test_bad_filters_and_cursors_are_400_with_the_reason(api, monitors):
    client = api("manager")
    answer = client.get("/api/v1/monitors/", {"type": "sideways"})
    assert answer.status_code == 400 and "type" in answer.json()["errors"]
    answer = client.get("/api/v1/monitors/", {"cursor": "not-a-cursor"})
    assert answer.status_code == 400 and answer.json()["errors"] == {"cursor": ["invalid cursor"]}


def test_each_kind_has_its_own_filtered_list_and_detail(api, monitors):
    client = api("integration")
    body = client.get("/api/v1/monitors/volume/", {"violated": "true"}).json()
    assert [r["slug"] for r in body["results"]] == ["c-stripe"]
    assert body["results"][0]["window_seconds"] == 1800
    body = client.get("/api/v1/monitors/evidence/", {"direction": "before"}).json()
    assert [r["slug"] for r in body["results"]] == ["d-approval"]
    detail = client.get(f"/api/v1/monitors/evidence/{monitors['b-evidence'].pk}/").json()
    assert (detail["missing_last_7_days"], detail["pending_checks"], detail["window_seconds"]) == (1, 0, 86400)


def test_managers_create_and_patch_with_versions(api, monitors, calendar):
    client = api("manager")
    answer = client.post(
        "/api/v1/monitors/volume/",
        {
            "slug": "bank-statement",
            "name": "Bank statement by 06:00",
            "system": "sap-s4",
            "kind": "*bankstatement*",
            "calendar": calendar.slug,
            "mode": "daily_deadline",
            "deadline_time": "06:00",
            "min_count": 1,
        },
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.json()
    created = answer.json()
    assert created["version"] == 1 and created["category"] == "platform"
    url = f"/api/v1/monitors/volume/{created['id']}/"
    answer = client.patch(url, {"version": 1, "min_count": 2}, content_type="application/json")
    assert answer.status_code == 200, answer.json()
    assert answer.json()["version"] == 2
    stale = client.patch(url, {"version": 1, "min_count": 3}, content_type="application/json")
    assert stale.status_code == 409 and "changed since version 1" in stale.json()["detail"]
    assert VolumeMonitor.objects.get(slug="bank-statement").min_count == 2
    entry = AuditEntry.objects.get(action="volume_monitor.updated", object_id=str(created["id"]))
    assert (entry.before["min_count"], entry.after["min_count"]) == (1, 2)
    answer = client.patch(
        f"/api/v1/monitors/evidence/{monitors['b-evidence'].pk}/",
        {"version": 1, "window_seconds": 8 * 3600},
        content_type="application/json",
    )
    assert answer.status_code == 200 and answer.json()["window_seconds"] == 28800


@pytest.mark.parametrize("role", ["finance_ops", "compliance", "integration"])
def test_roles_that_may_not_edit_get_403_and_nothing_changes(api, monitors, calendar, role):
    client = api(role)
    monitor = monitors["a-ipaas"]
    answer = client.patch(
        f"/api/v1/monitors/volume/{monitor.pk}/", {"version": 1, "min_count": 9}, content_type="application/json"
    )
    assert answer.status_code == 403
    answer = client.post(
        "/api/v1/monitors/evidence/",
        {"slug": "x", "name": "x", "trigger_kind": "a", "evidence_kind": "b", "window_seconds": 3600},
        content_type="application/json",
    )
    assert answer.status_code == 403
    monitor.refresh_from_db()
    assert (monitor.min_count, monitor.version, EvidenceMonitor.objects.count()) == (1, 1, 2)


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("volume", {"slug": "w", "name": "w", "system": "s", "kind": "*", "mode": "window"}, "window_seconds"),
        ("volume", {"slug": "w", "name": "w", "system": "", "kind": "*", "window_seconds": 600}, "system"),
        ("volume", {"slug": "w", "name": "w", "system": "s", "window_seconds": 600, "category": "nope"}, "category"),
        ("volume", {"slug": "w", "name": "w", "system": "s", "window_seconds": 600, "max_count": 0}, "max_count"),
        ("evidence", {"slug": "e", "name": "e", "trigger_kind": "a.b", "window_seconds": 3600}, "evidence_kind"),
        (
            "evidence",
            {"slug": "e", "name": "e", "trigger_kind": "a.b", "evidence_kind": "A.B", "window_seconds": 3600},
            "evidence_kind",
        ),
    ],
)
def test_bad_input_is_a_400_naming_the_field_and_nothing_is_saved(api, monitors, calendar, path, body, field):
    client = api("manager")
    before = (VolumeMonitor.objects.count(), EvidenceMonitor.objects.count(), AuditEntry.objects.count())
    answer = client.post(
        f"/api/v1/monitors/{path}/", {**body, "calendar": calendar.slug}, content_type="application/json"
    )
    assert answer.status_code == 400, answer.json()
    assert field in answer.json()["errors"] and answer.json()["detail"]
    assert (VolumeMonitor.objects.count(), EvidenceMonitor.objects.count(), AuditEntry.objects.count()) == before


def test_a_patch_without_its_version_is_refused(api, monitors):
    answer = api("manager").patch(
        f"/api/v1/monitors/volume/{monitors['a-ipaas'].pk}/", {"min_count": 4}, content_type="application/json"
    )
    assert answer.status_code == 400 and "version" in answer.json()["errors"]


def test_the_schema_documents_the_monitor_endpoints(api, db):
    schema = api("manager").get("/api/v1/schema/", {"format": "json"}).json()
    for path in ("/api/v1/monitors/", "/api/v1/monitors/volume/", "/api/v1/monitors/evidence/{id}/"):
        assert path in schema["paths"]
    assert "409" in schema["paths"]["/api/v1/monitors/volume/{id}/"]["patch"]["responses"]

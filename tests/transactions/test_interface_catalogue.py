"""The integration catalogue: edits (audited, version-checked), CSV export, and CSV import that is all or nothing."""

import csv
import io
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from console.lib.audit import AuditEntry
from tests.factories import at, canonical, ingest_and_correlate
from transactions.models import Interface, System
from transactions.services import interface_map_rebuild


@pytest.fixture(autouse=True)
def _utc_days(settings):
    settings.DASHBOARD_TIME_ZONE = "UTC"


@pytest.fixture
def estate(source):
    records = [
        canonical(
            event_id=f"e{n}",
            system=system,
            kind=kind,
            occurred_at=at(n),
            trace_id=None,
            span_id=None,
            approval=None,
            business_keys={"order": "SO-1"},
        )
        for n, (system, kind) in enumerate([("crm", "order.created"), ("erp", "order.posted"), ("billing", "inv")])
    ]
    ingest_and_correlate(source, *records)
    interface_map_rebuild(first=date(2026, 5, 18), last=date(2026, 5, 18))


@pytest.fixture
def editor(client, role_user):
    client.force_login(role_user("integration"))
    return client


def _upload(text: str) -> dict:
    return {"file": SimpleUploadedFile("inventory.csv", text.encode("utf-8-sig"), content_type="text/csv")}


@pytest.mark.django_db
def test_edit_is_audited_and_a_stale_version_answers_409(editor, estate):
    erp = System.objects.get(name="erp")
    form = {
        "owner_team": "ERP platform",
        "owner_queue": "integration-platform",
        "criticality": "critical",
        "style": "",
        "environment": "production",
        "data_objects": "order; invoice; order",
        "notes": "S/4HANA",
        "version": erp.version,
    }
    response = editor.post(f"/map/systems/{erp.pk}/edit/", form)
    assert response.status_code == 302
    erp.refresh_from_db()
    assert (erp.owner_team, erp.criticality, erp.data_objects, erp.version) == (
        "ERP platform",
        "critical",
        ["order", "invoice"],
        2,
    )
    entry = AuditEntry.objects.filter(action="system.catalogued").get()
    assert entry.before["owner_team"] == "" and entry.after["owner_team"] == "ERP platform"
    stale = editor.post(f"/map/systems/{erp.pk}/edit/", {**form, "notes": "changed", "version": 1})
    assert stale.status_code == 409
    erp.refresh_from_db()
    assert erp.notes == "S/4HANA"
    bad = editor.post(f"/map/systems/{erp.pk}/edit/", {**form, "owner_queue": "Not a slug!", "version": 2})
    assert bad.status_code == 400


@pytest.mark.django_db
@pytest.mark.parametrize(("role", "status"), [("manager", 200), ("integration", 200), ("finance_ops", 403)])
def test_only_managers_and_integration_edit(client, role_user, estate, role, status):
    client.force_login(role_user(role))
    iface = Interface.objects.get(source__name="crm")
    assert client.get(f"/map/interfaces/{iface.pk}/edit/").status_code == status
    assert client.get("/map/catalogue/").status_code == status
    assert client.get("/map/catalogue/?format=csv").status_code == 200  # every reader may export


@pytest.mark.django_db
def test_export_then_import_round_trip(editor, estate):
    text = (
        "type,name,owner_team,owner_queue,criticality,style,environment,data_objects,notes\n"
        "system,crm,Sales ops,,high,,production,contract;order,\n"
        "interface,crm -> erp,Integration,integration-platform,High,API,production,order,via MuleSoft\n"
        "interface,erp>billing,Billing,billing,medium,batch,production,invoice,nightly\n"
    )
    response = editor.post("/map/catalogue/", _upload(text))
    assert response.status_code == 302, response.content.decode()
    crm_erp = Interface.objects.get(source__name="crm", target__name="erp")
    assert (crm_erp.owner_queue, crm_erp.criticality, crm_erp.style, crm_erp.notes) == (
        "integration-platform",
        "high",
        "api",
        "via MuleSoft",
    )
    assert AuditEntry.objects.filter(action="interface.catalogued").count() == 2
    export = editor.get("/map/catalogue/?format=csv")
    rows = list(csv.reader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert rows[0][:2] == ["type", "name"]
    assert [
        "interface",
        "erp -> billing",
        "Billing",
        "billing",
        "medium",
        "batch",
        "production",
        "invoice",
        "nightly",
        "",
    ] in rows
    assert AuditEntry.objects.filter(action="catalogue.exported").exists()


@pytest.mark.django_db
def test_import_with_unknown_and_repeated_names_changes_nothing_and_says_which_rows(editor, estate):
    text = (
        "type,name,owner_team,criticality,style\n"
        "system,crm,Sales ops,high,\n"
        "system,sap-ecc,Legacy,low,\n"
        "system,crm,Someone else,low,\n"
        "interface,crm -> billing,X,,\n"
        "interface,crm,X,,\n"
        "system,erp,ERP,urgent,\n"
        "interface,crm -> erp,X,,carrier pigeon\n"
        "gateway,x,,,\n"
    )
    response = editor.post("/map/catalogue/", _upload(text))
    assert response.status_code == 400
    problems = response.context["problems"]
    assert problems == [
        "row 3: no discovered system is named 'sap-ecc'",
        "row 4: system 'crm' is already on row 2",
        "row 5: no discovered interface 'crm -> billing'",
        "row 6: an interface is named 'source -> target', not 'crm'",
        "row 7: criticality 'urgent' is not one of low, medium, high, critical",
        "row 8: style 'carrier pigeon' is not one of api, event, batch, file",
        "row 9: type must be system or interface, not 'gateway'",
    ]
    assert not System.objects.exclude(owner_team="").exists()  # row 2 was fine, and is not imported either
    assert not AuditEntry.objects.filter(action__endswith=".catalogued").exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b"", "empty"),
        (b"owner_team,notes\nA,B\n", "lacks the column(s) name, type"),
    ],
)
def test_import_of_an_unreadable_file_is_a_clear_error(editor, estate, body, error):
    response = editor.post("/map/catalogue/", {"file": SimpleUploadedFile("x.csv", body, content_type="text/csv")})
    assert response.status_code == 400
    assert error in response.content.decode()


@pytest.mark.django_db
def test_expected_frequency_is_read_from_the_csv_and_refused_on_a_system(editor, estate):
    ok = "type,name,expected_every\ninterface,crm -> erp,1d 4h\n"
    assert editor.post("/map/catalogue/", _upload(ok)).status_code == 302
    assert Interface.objects.get(source__name="crm").expected_every.total_seconds() == 28 * 3600
    bad = "type,name,expected_every\nsystem,crm,1d\ninterface,erp -> billing,soon\n"
    response = editor.post("/map/catalogue/", _upload(bad))
    assert response.status_code == 400
    problems = response.context["problems"]
    assert problems[0] == "row 2: an expected frequency belongs to an interface, not a system"
    assert problems[1].startswith("row 3: expected_every: 'soon' is not a duration")

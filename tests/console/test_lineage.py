"""The lineage page, its exports and evidence packages, the API, the SoD rules and the control cases, through the
real ingest -> correlate -> classify pipeline."""

import csv
import io
import json
import zipfile

import pytest
from django.core.management import call_command
from django.urls import reverse

from console.evidence import package_verify
from console.lib.audit import AuditEntry
from console.models import SodRule
from exceptions.models import Case
from tests.factories import T0, at, canonical, failures_raise, ingest_and_correlate, reference_data_load
from transactions.models import ProcessStep

pytestmark = pytest.mark.django_db


def approval(event_id, kind, hours, actor, step, **keys):
    return canonical(
        event_id=event_id,
        kind=kind,
        occurred_at=at(hours),
        trace_id=None,
        span_id=None,
        business_keys=keys,
        approval={"actor": actor, "decision": "approved", "step": step},
        attributes={},
    )


def plain(event_id, kind, hours, attributes=None, **keys):
    return canonical(
        event_id=event_id,
        kind=kind,
        occurred_at=at(hours),
        trace_id=None,
        span_id=None,
        business_keys=keys,
        approval=None,
        attributes=attributes or {},
    )


@pytest.fixture
def controls(db):
    """Order to cash with approval controls: the invoice needs a billing review, by a manager; a SoD pair."""
    reference_data_load()
    ProcessStep.objects.filter(process__slug="order-to-cash", name="Contract approved").update(
        requires_approval=True, approval_step="deal-desk", approval_opens_case=True
    )
    ProcessStep.objects.filter(process__slug="order-to-cash", name="Invoice posted").update(
        requires_approval=True, approval_step="billing-review", allowed_approvers=["manager"]
    )
    SodRule.objects.create(first_step="deal-desk", second_step="billing-review", opens_case=True)


@pytest.fixture
def source(db):
    from transactions.services import ingest_source_create

    return ingest_source_create(name="crm", actor="system:test")


@pytest.fixture
def sod_contract(controls, source, role_user):
    """C-1001: j.doe approves the deal desk and the billing review (a SoD pair), and is a manager."""
    role_user("manager", username="j.doe")
    ingest_and_correlate(
        source,
        approval("a1", "contract.approved", 0, "j.doe", "deal-desk", contract="C-1001"),
        plain("e2", "order.created", 1, contract="C-1001", order="SO-1"),
        approval("a3", "billing.reviewed", 2, "j.doe", "billing-review", order="SO-1"),
        plain("e4", "invoice.posted", 3, order="SO-1", invoice='=HYPERLINK("http://x")'),
    )


def test_the_lineage_page_shows_rows_in_order_and_a_sod_finding(client, sod_contract, role_user):
    client.force_login(role_user("compliance"))
    page = client.get(reverse("lineage"), {"q": "C-1001"})
    assert page.status_code == 200
    result = page.context["result"]
    assert [f.code for f in result.findings] == ["sod_pair"]
    kinds = [(r.kind, r.what) for r in result.rows if r.kind in ("approval", "event")]
    assert kinds == [
        ("approval", "deal-desk approved"),
        ("event", "order.created"),
        ("approval", "billing-review approved"),
        ("event", "invoice.posted"),
    ]
    assert "Segregation of duties" in page.content.decode()
    # The finding's rule opens a control case, by Closeloop (system actor), once however often the page is read.
    client.get(reverse("lineage"), {"q": "C-1001"})
    control = Case.objects.get(category__slug="control")
    assert control.occurrence_count == 1
    assert AuditEntry.objects.filter(action="exceptions.signals_recorded", actor="system:lineage").count() == 1


def test_findings_of_the_same_rule_group_into_one_control_case(client, controls, source, role_user):
    role_user("manager", username="j.doe")
    for n in (1, 2):
        ingest_and_correlate(
            source,
            approval(f"a{n}", "contract.approved", 0, "j.doe", "deal-desk", contract=f"C-{n}"),
            approval(f"b{n}", "billing.reviewed", 2, "j.doe", "billing-review", contract=f"C-{n}"),
        )
    client.force_login(role_user("compliance"))
    for n in (1, 2):
        client.get(reverse("lineage"), {"q": f"C-{n}"})
    control = Case.objects.get(category__slug="control")
    assert control.occurrence_count == 2


def test_missing_and_late_approval_and_an_approver_not_allowed(client, controls, source, role_user):
    role_user("finance_ops", "compliance", username="ops.amy")  # two roles, neither is manager
    ingest_and_correlate(
        source,
        plain("e1", "contract.approved", 0, contract="C-7"),
        plain("e2", "invoice.posted", 3, contract="C-7"),
        approval("a3", "billing.reviewed", 4, "ops.amy", "billing-review", contract="C-7"),
    )
    client.force_login(role_user("compliance"))
    result = client.get(reverse("lineage"), {"q": "C-7"}).context["result"]
    assert sorted(f.code for f in result.findings) == [
        "approval_after_step",
        "approver_not_allowed",
        "missing_approval",
    ]
    # The missing deal-desk approval opens a case (the step's setting); the others do not.
    assert Case.objects.filter(category__slug="control").count() == 1


def test_a_transaction_merged_from_two_shows_both_histories_and_the_absorbed_ones_case(
    client, controls, source, role_user
):
    ingest_and_correlate(source, approval("a1", "contract.approved", 0, "j.doe", "deal-desk", contract="C-9"))
    failures_raise(
        source,
        {
            **plain("f1", "order.created", 1, order="SO-9"),
            "status": "error",
            "error": {"code": "V1", "message": "credit block"},
            "system": "sap-s4",
        },
    )
    ingest_and_correlate(source, plain("e3", "invoice.posted", 2, contract="C-9", order="SO-9"))
    client.force_login(role_user("compliance"))
    result = client.get(reverse("lineage"), {"q": "SO-9"}).context["result"]
    assert len(result.transactions) == 1 and result.transactions[0]["absorbed_ids"]
    kinds = {r.kind for r in result.rows}
    assert {"approval", "event", "decision", "case", "audit"} <= kinds
    assert all(r.txn_id == result.transactions[0]["id"] for r in result.rows if r.kind in ("case", "decision"))


def test_csv_and_json_exports_are_audited_and_neutralise_formulas(client, sod_contract, role_user):
    client.force_login(role_user("compliance", username="carla"))
    response = client.get(reverse("lineage-export"), {"q": "C-1001", "format": "csv"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][-1] == "findings"
    assert "sod_pair" in {r[-1] for r in rows[1:]}
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows[1:] for cell in r)
    entry = AuditEntry.objects.filter(action="lineage.exported").latest("id")
    assert entry.actor == "user:carla" and entry.after["format"] == "csv" and entry.after["rows"] == len(rows) - 1
    document = client.get(reverse("lineage-export"), {"q": "C-1001", "format": "json"}).json()
    assert document["findings"][0]["code"] == "sod_pair"
    assert AuditEntry.objects.filter(action="lineage.exported").count() == 2


def test_the_evidence_package_verifies_and_one_altered_byte_is_named(client, sod_contract, role_user, tmp_path):
    client.force_login(role_user("compliance", username="carla"))
    response = client.get(reverse("lineage-export"), {"q": "C-1001", "format": "evidence"})
    assert response["Content-Type"] == "application/zip"
    path = tmp_path / "evidence.zip"
    path.write_bytes(response.content)
    check = package_verify(str(path))
    assert check.ok, check.problems
    manifest = check.manifest
    assert set(manifest["files"]) == {"lineage.csv", "lineage.json", "report.html"}
    assert manifest["exported_by"] == "user:carla" and manifest["audit_chain"]["ok"]
    assert len(manifest["audit_chain"]["head_hash"]) == 64
    call_command("verify_evidence", str(path))

    # One byte of the JSON changed, the package rebuilt around it (a plain byte flip in a zip also breaks its CRC).
    with zipfile.ZipFile(path) as original:
        members = {name: original.read(name) for name in original.namelist()}
    altered = bytearray(members["lineage.json"])
    altered[altered.index(b"j.doe")] = ord("J")
    members["lineage.json"] = bytes(altered)
    del members["report.html"]
    bad = tmp_path / "altered.zip"
    with zipfile.ZipFile(bad, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_evidence", str(bad))
    assert exit_info.value.code == 1
    assert package_verify(str(bad)).problems == [
        "lineage.json: altered (does not match its SHA-256)",
        "report.html: missing",
    ]


def test_a_flipped_byte_in_the_raw_zip_is_detected(client, sod_contract, role_user, tmp_path):
    client.force_login(role_user("compliance"))
    data = bytearray(client.get(reverse("lineage-export"), {"q": "C-1001", "format": "evidence"}).content)
    # The first member's data starts after its local header (30 bytes), its name and its extra field.
    name_length, extra_length = int.from_bytes(data[26:28], "little"), int.from_bytes(data[28:30], "little")
    data[30 + name_length + extra_length + 5] ^= 0x01
    path = tmp_path / "flipped.zip"
    path.write_bytes(bytes(data))
    check = package_verify(str(path))
    assert not check.ok and check.problems


def test_the_api_answers_json_and_csv_and_refuses_without_the_capability(client, sod_contract, role_user):
    client.force_login(role_user("compliance"))
    url = reverse("api-lineage")
    body = client.get(url, {"business_key": "C-1001"}).json()
    assert body["findings"][0]["code"] == "sod_pair" and body["rows"]
    response = client.get(url, {"business_key": "C-1001", "format": "csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert client.get(url).status_code == 400
    client.force_login(role_user("finance_ops"))
    assert client.get(url, {"business_key": "C-1001"}).status_code == 403


def test_managers_edit_sod_rules_audited_and_compliance_cannot(client, controls, role_user):
    client.force_login(role_user("manager", username="max"))
    response = client.post(
        reverse("sod-rule-list"),
        {"first_step": "po-approval", "second_step": "invoice-approval", "opens_case": "on", "is_active": "on"},
    )
    assert response.status_code == 302
    rule = SodRule.objects.get(first_step="po-approval")
    assert AuditEntry.objects.filter(action="sod_rule.created", actor="user:max", object_id=str(rule.pk)).exists()
    same = client.post(reverse("sod-rule-list"), {"first_step": "x", "second_step": "X", "is_active": "on"})
    assert same.status_code == 200 and "must differ" in same.content.decode()
    client.force_login(role_user("compliance"))
    assert client.get(reverse("sod-rule-list")).status_code == 200
    assert client.post(reverse("sod-rule-list"), {"first_step": "a", "second_step": "b"}).status_code == 403
    assert (
        client.post(reverse("sod-rule-edit", args=[rule.pk]), {"first_step": "a", "second_step": "b"}).status_code
        == 403
    )
    assert client.post(reverse("sod-rule-delete", args=[rule.pk])).status_code == 403
    client.force_login(role_user("manager", username="max"))
    assert client.post(reverse("sod-rule-delete", args=[rule.pk])).status_code == 302
    assert AuditEntry.objects.filter(action="sod_rule.deleted", object_id=str(rule.pk)).exists()


def test_lineage_navigation_for_compliance_managers_and_admin_only(client, role_user):
    for role, sees in (("compliance", True), ("manager", True), ("admin", True), ("finance_ops", False)):
        client.force_login(role_user(role))
        nav = {item.url for _, items in client.get(reverse("home")).context["navigation"] for item in items}
        # Compliance and admin under Compliance; managers through their SoD rules page, which links to the lineage.
        assert bool(nav & {reverse("lineage"), reverse("sod-rule-list")}) is sees, role
        assert client.get(reverse("lineage")).status_code == (200 if sees else 403)
        if role == "manager":
            assert reverse("lineage") in client.get(reverse("sod-rule-list")).content.decode()


def test_the_audit_page_shows_chain_status_readable_changes_and_verifies_now(client, role_user):
    from console.lib.audit import audit_record

    audit_record(
        actor="user:max",
        action="rule.updated",
        object_type="t",
        before={"name": "a", "n": 1},
        after={"name": "b", "n": 1},
    )
    client.force_login(role_user("compliance"))
    page = client.get(reverse("audit-list"))
    assert "not checked yet" in page.content.decode()
    assert [("name", "a", "b")] in [changes for _, changes in page.context["rows"]]
    response = client.post(reverse("audit-verify"), follow=True)
    text = response.content.decode()
    assert "chain intact" in text and "Chain verified" in text
    assert 'type="date"' in text


def test_a_bulk_sample_is_built_by_the_task_streamed_to_a_file_and_verifies(
    client, sod_contract, source, role_user, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.EVIDENCE_DIR = tmp_path
    ingest_and_correlate(source, approval("x1", "contract.approved", 1, "mia", "deal-desk", contract="C-2"))
    client.force_login(role_user("compliance", username="carla"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("api-evidence-package-create"),
            {"since": "2026-05-18T00:00:00Z", "until": "2026-05-19T00:00:00Z"},
            content_type="application/json",
        )
    assert response.status_code == 202
    job_id = response.json()["id"]
    download = client.get(reverse("api-evidence-package", args=[job_id]))
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    path = tmp_path / "sample.zip"
    path.write_bytes(b"".join(download.streaming_content))
    check = package_verify(str(path))
    assert check.ok, check.problems
    assert check.manifest["transactions"] == 2 and check.manifest["exported_by"] == "user:carla"
    with zipfile.ZipFile(path) as archive:
        document = json.loads(archive.read("lineage.json"))
        lines = archive.read("lineage.csv").decode().splitlines()
    assert len(document["transactions"]) == 2 and len(document["rows"]) == len(lines) - 1
    assert [f["code"] for f in document["findings"]] == ["sod_pair"]
    entry = AuditEntry.objects.filter(action="lineage.exported").latest("id")
    assert entry.actor == "user:carla" and entry.after["rows"] == len(document["rows"])
    page = client.get(reverse("evidence-job", args=[job_id]))
    assert "100%" in page.content.decode() and reverse("evidence-job-download", args=[job_id]) in page.content.decode()


def test_a_sample_still_being_built_answers_its_status(client, controls, role_user, settings, tmp_path):
    settings.EVIDENCE_DIR = tmp_path
    client.force_login(role_user("compliance"))
    response = client.post(reverse("lineage-sample-create"), {"since": "2026-05-18", "until": "2026-05-19"})
    job_id = response["Location"].rstrip("/").split("/")[-1]  # on_commit never ran: the job is still pending
    status = client.get(reverse("api-evidence-package", args=[job_id]))
    assert status.status_code == 202 and status.json()["status"] == "pending"
    assert client.get(reverse("evidence-job-download", args=[job_id])).status_code == 409
    assert (
        client.post(reverse("lineage-sample-create"), {"since": "2026-05-19", "until": "2026-05-18"}).status_code == 400
    )


def test_sla_verdicts_join_the_lineage_as_automatic_decisions(client, sod_contract, role_user):
    from slas.models import SlaClock
    from tests.factories import SlaDefinitionFactory
    from transactions.models import Transaction

    txn = Transaction.objects.get(business_keys__contract=["C-1001"])
    SlaClock.objects.create(
        definition=SlaDefinitionFactory(name="Invoice after contract"),
        txn=txn,
        status="breached",
        started_at=at(0),
        start_event_id=1,
        at_risk_at=at(1),
        at_risk_reason="80% of the target used",
        breached_at=at(2),
    )
    client.force_login(role_user("compliance"))
    rows = client.get(reverse("lineage"), {"q": "C-1001"}).context["result"].rows
    verdicts = [(r.actor, r.what, r.decision) for r in rows if r.ref.startswith("sla-clock:")]
    assert verdicts == [
        ("system:slas", "SLA Invoice after contract: at risk", "at_risk"),
        ("system:slas", "SLA Invoice after contract: breached", "breached"),
    ]


def test_a_case_shared_by_many_transactions_brings_only_this_transactions_share_into_its_lineage(controls, source):
    from console.selectors import lineage_get
    from exceptions.services import Signal, signals_record
    from transactions.models import Transaction

    ingest_and_correlate(source, *[plain(f"c-{n}", "contract.approved", 0, contract=f"C-{n}") for n in range(6)])
    txns = list(Transaction.objects.order_by("id").values_list("id", flat=True))

    def stalled(txn_id: int) -> Signal:
        return Signal(
            signal_key=f"stalled:{txn_id}",
            category_slug="platform",
            system="sap-s4",
            kind="order.created",
            title="Stalled: waiting for the order",
            message=f"transaction {txn_id} waits",
            occurred_at=T0,
            txn_id=txn_id,
            fingerprint_parts=("stalled", "order-to-cash", "2"),
        )

    # The stall job of two passes: one case, six occurrences, two audit entries.
    signals_record([stalled(t) for t in txns[:3]], actor="system:slas")
    signals_record([stalled(t) for t in txns[3:]], actor="system:slas")
    mine = lineage_get(txn_ids=[txns[4]])
    kinds = [r.kind for r in mine.rows]
    assert kinds.count("decision") == 1  # its own occurrence, not the five others
    signal_entries = [r for r in mine.rows if r.kind == "audit" and r.what == "exceptions.signals_recorded"]
    assert len(signal_entries) == 1 and signal_entries[0].txn_id == txns[4]  # the pass that recorded it
    assert not [r for r in mine.rows if r.kind == "case_action" and "occurrence" in r.what]

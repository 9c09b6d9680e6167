import pytest
from django.core.management import call_command

from console.evidence import package_verify
from console.models import SodRule
from tests.factories import PASSWORD, at, canonical, ingest_and_correlate, reference_data_load

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _approval(event_id: str, kind: str, hours: float, step: str, **keys: str) -> dict:
    return canonical(
        event_id=event_id,
        kind=kind,
        occurred_at=at(hours),
        trace_id=None,
        span_id=None,
        business_keys=keys,
        approval={"actor": "j.doe", "decision": "approved", "step": step},
        attributes={},
    )


def test_search_a_contract_see_the_sod_finding_download_and_verify_the_evidence(
    browser_page, live_server, role_user, tmp_path
):
    from transactions.services import ingest_source_create

    reference_data_load()
    SodRule.objects.create(first_step="deal-desk", second_step="billing-review", opens_case=False)
    source = ingest_source_create(name="crm", actor="system:test")
    ingest_and_correlate(
        source,
        _approval("a1", "contract.approved", 0, "deal-desk", contract="C-1001"),
        _approval("a2", "billing.reviewed", 2, "billing-review", contract="C-1001"),
    )
    role_user("compliance", username="carla")
    page = browser_page
    page.goto(f"{live_server.url}/lineage/")
    page.fill("#id_username", "carla")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.fill("#id_q", "C-1001")
    page.click("text=Search")
    finding = page.locator("[data-testid=findings] [data-code=sod_pair]")
    assert "j.doe approved both deal-desk and billing-review" in finding.inner_text()
    assert page.locator("[data-testid=lineage-table] tbody tr.table-danger").count() == 2
    with page.expect_download() as download_info:
        page.click("[data-testid=evidence-download]")
    path = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(path)
    assert path.name.endswith(".evidence.zip")
    check = package_verify(str(path))
    assert check.ok, check.problems
    assert check.manifest["exported_by"] == "user:carla"
    call_command("verify_evidence", str(path))

"""The integration map page, its click-through to transactions, the systems and interfaces API, and who may see them."""

from datetime import date

import pytest

from console.lib.navigation import navigation_for
from tests.factories import at, canonical, ingest_and_correlate
from transactions.models import Interface, Transaction
from transactions.services import interface_map_rebuild

DAY = date(2026, 5, 18)


def native(event_id, system, kind, hours, *, status="ok", **keys):
    return canonical(
        event_id=event_id,
        system=system,
        kind=kind,
        occurred_at=at(hours),
        status=status,
        duration_ms=0,
        error={"code": "E1", "message": "rejected"} if status == "error" else None,
        trace_id=None,
        span_id=None,
        approval=None,
        business_keys=keys,
    )


@pytest.fixture(autouse=True)
def _utc_days(settings):
    settings.DASHBOARD_TIME_ZONE = "UTC"
    settings.INTERFACE_LATE_AFTER_SECONDS = 10 * 365 * 86400


@pytest.fixture
def estate(source):
    """Two orders crm -> erp -> billing (crm -> erp after 30 and 90 min; erp -> billing after 1 h, the second failed),
    and a third transaction that stays in the crm."""
    ingest_and_correlate(
        source,
        native("a1", "crm", "order.created", 0, order="SO-1"),
        native("a2", "erp", "order.posted", 0.5, order="SO-1"),
        native("a3", "billing", "invoice.created", 1.5, order="SO-1"),
        native("b1", "crm", "order.created", 0, order="SO-2"),
        native("b2", "erp", "order.posted", 1.5, order="SO-2"),
        native("b3", "billing", "invoice.created", 2.5, status="error", order="SO-2"),
        native("c1", "crm", "order.created", 3, order="SO-3"),
    )
    interface_map_rebuild(first=DAY, last=DAY)
    return {k: Transaction.objects.get(business_keys__order=[k]) for k in ("SO-1", "SO-2", "SO-3")}


@pytest.fixture
def reader(client, role_user):
    client.force_login(role_user("finance_ops"))
    return client


def _results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


@pytest.mark.django_db
def test_interfaces_api_gives_daily_figures_in_range(reader, estate):
    rows = _results(reader.get("/api/v1/interfaces/?since=2026-05-17&until=2026-05-19"))
    by_pair = {(r["source"], r["target"]): r for r in rows}
    assert set(by_pair) == {("crm", "erp"), ("erp", "billing")}
    crm_erp = by_pair[("crm", "erp")]
    assert crm_erp["totals"] == {
        "volume": 2,
        "errors": 0,
        "error_rate": 0.0,
        "duplicates": 0,
        "late": 0,
        # From the latency histogram: within 1% of the exact figures.
        "latency_p50_ms": pytest.approx(3_600_000, rel=0.01),  # 30 and 90 min: linear between the two ranks
        "latency_p95_ms": pytest.approx(5_220_000, rel=0.01),  # 30 min + 0.95 * 60 min
    }
    (day,) = crm_erp["days"]
    assert day["day"] == "2026-05-18"
    assert (day["volume"], day["latency_p50_ms"], day["latency_p95_ms"]) == (2, 3_600_000, 5_220_000)
    assert day["kinds"] == {"order.posted": 2}
    erp_billing = by_pair[("erp", "billing")]
    assert (erp_billing["totals"]["errors"], erp_billing["totals"]["error_rate"]) == (1, 50.0)
    # Out of range: the interfaces are listed, silent.
    rows = _results(reader.get("/api/v1/interfaces/?since=2026-06-01&until=2026-06-02"))
    assert {r["totals"]["volume"] for r in rows} == {0} and all(r["days"] == [] for r in rows)
    assert [r["target"] for r in _results(reader.get("/api/v1/interfaces/?source=erp&since=2026-05-18"))] == ["billing"]
    assert len(_results(reader.get("/api/v1/interfaces/?system=erp&since=2026-05-18"))) == 2


@pytest.mark.django_db
def test_systems_api_gives_traffic_in_and_out(reader, estate):
    rows = _results(reader.get("/api/v1/systems/?since=2026-05-18&until=2026-05-18"))
    assert {r["name"]: (r["volume_in"], r["volume_out"], r["errors_in"]) for r in rows} == {
        "crm": (0, 2, 0),
        "erp": (2, 2, 0),
        "billing": (2, 0, 1),
    }
    assert [r["name"] for r in _results(reader.get("/api/v1/systems/?name=erp"))] == ["erp"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "query", ["since=2026-05-19&until=2026-05-18", "since=yesterday", "since=2025-01-01&until=2026-05-18"]
)
def test_api_refuses_a_bad_range_with_400(reader, estate, query):
    for path in ("/api/v1/interfaces/", "/api/v1/systems/"):
        response = reader.get(f"{path}?{query}")
        assert response.status_code == 400
        assert "since" in response.json() or "until" in response.json()


@pytest.mark.django_db
def test_api_and_page_need_a_reading_role(client, role_user, estate):
    assert client.get("/api/v1/interfaces/").status_code in (401, 403)
    assert client.get("/map/").status_code == 302
    client.force_login(role_user())  # signed in, no role
    assert client.get("/api/v1/systems/").status_code == 403
    assert client.get("/map/").status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "in_navigation"), [("manager", True), ("integration", True), ("finance_ops", False), ("compliance", False)]
)
def test_navigation_for_managers_and_integration_page_for_every_reader(client, role_user, role, in_navigation):
    user = role_user(role)
    labels = [item.label for _, items in navigation_for(user) for item in items]
    assert ("Integration map" in labels) is in_navigation
    client.force_login(user)
    assert client.get("/map/").status_code == 200


@pytest.mark.django_db
def test_map_page_shows_network_and_sortable_table(reader, estate):
    response = reader.get("/map/?since=2026-05-18&until=2026-05-18")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="map-chart"' in html and "cl-figure" in html
    table = response.context["interfaces"]
    assert [(r["f"].source, r["f"].target, r["f"].volume) for r in table] == [("crm", "erp", 2), ("erp", "billing", 2)]
    by_errors = reader.get("/map/?since=2026-05-18&until=2026-05-18&sort=errors&desc=on").context["interfaces"]
    assert [r["f"].errors for r in by_errors] == [1, 0]
    by_source = reader.get("/map/?since=2026-05-18&until=2026-05-18&sort=source").context["interfaces"]
    assert [r["f"].source for r in by_source] == ["crm", "erp"]
    latency = reader.get("/map/?since=2026-05-18&until=2026-05-18&colour=latency")
    assert latency.status_code == 200 and "p95 hop latency" in latency.content.decode()


@pytest.mark.django_db
def test_map_page_answers_a_bad_range_with_a_form_error(reader, estate):
    response = reader.get("/map/?since=2026-05-19&until=2026-05-18")
    assert response.status_code == 400
    assert "The end is before the start." in response.content.decode()
    assert reader.get("/map/?sort=nonsense").status_code == 400


@pytest.mark.django_db
def test_click_through_filters_transactions_by_interface(reader, estate):
    response = reader.get("/map/?since=2026-05-18&until=2026-05-18")
    erp_billing = next(r for r in response.context["interfaces"] if r["f"].source == "erp")
    listed = reader.get(erp_billing["url"])
    assert {t.pk for t in listed.context["transactions"]} == {estate["SO-1"].pk, estate["SO-2"].pk}
    crm = next(r for r in response.context["systems"] if r["s"].name == "crm")
    listed = reader.get(crm["url"])
    assert {t.pk for t in listed.context["transactions"]} == {t.pk for t in estate.values()}
    iface = Interface.objects.get(source__name="crm")
    api = _results(reader.get(f"/api/v1/transactions/?interface={iface.pk}"))
    assert {r["id"] for r in api} == {estate["SO-1"].pk, estate["SO-2"].pk}


@pytest.mark.django_db
def test_a_catalogued_interface_silent_in_the_range_stays_in_the_table_with_no_volume(reader, estate, source):
    from datetime import timedelta

    from transactions.services import CatalogueInput, catalogue_entry_update

    quiet = Interface.objects.get(source__name="crm", target__name="erp")
    catalogue_entry_update(
        obj=quiet,
        entry=CatalogueInput(owner_team="Order desk", owner_queue="accounts-receivable", expected_every=timedelta(1)),
        actor="system:test",
        version=None,
    )
    # The next day only erp -> billing carries traffic.
    ingest_and_correlate(
        source,
        native("d1", "erp", "order.posted", 24, order="SO-4"),
        native("d2", "billing", "invoice.created", 25, order="SO-4"),
    )
    interface_map_rebuild(first=date(2026, 5, 19), last=date(2026, 5, 19))
    page = reader.get("/map/?since=2026-05-19&until=2026-05-19")
    rows = {(r["f"].source, r["f"].target): r for r in page.context["interfaces"]}
    assert rows[("crm", "erp")]["f"].volume == 0 and rows[("erp", "billing")]["f"].volume == 1
    assert rows[("crm", "erp")]["f"].error_rate is None and rows[("crm", "erp")]["p95"] == "—"
    html = page.content.decode()
    silent_row = html[html.index('data-interface="crm>erp"') :].split("</tr>")[0]
    assert "Order desk" in silent_row and 'data-col="volume">0<' in silent_row
    # Busiest first puts it last; quietest first puts it first; a figure it has none of sends it last either way.
    order = lambda query: [(r["f"].source, r["f"].target) for r in reader.get(query).context["interfaces"]]  # noqa: E731
    base = "/map/?since=2026-05-19&until=2026-05-19"
    assert order(base)[-1] == ("crm", "erp")
    assert order(f"{base}&sort=volume")[0] == ("crm", "erp")
    assert order(f"{base}&sort=latency_p95_ms&desc=on")[-1] == ("crm", "erp")
    assert order(f"{base}&sort=latency_p95_ms")[-1] == ("crm", "erp")

"""The SLA pages: definitions, calendars (with the holiday CSV import), clocks, and the panels on other apps' pages."""

from datetime import date, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from console.lib.audit import AuditEntry
from exceptions.models import Queue, RoutingRule
from slas.models import BusinessCalendar, Holiday, SlaDefinition
from slas.services.clocks import clocks_evaluate_transactions
from tests.factories import PASSWORD, BusinessCalendarFactory, SlaDefinitionFactory
from tests.slas.conftest import T0, event

H = timedelta(hours=1)


@pytest.fixture
def manager(client, role_user):
    user = role_user("manager", username="mona")
    client.login(username=user.username, password=PASSWORD)
    return client


@pytest.fixture
def ops(client, role_user):
    user = role_user("finance_ops", username="olga")
    client.login(username=user.username, password=PASSWORD)
    return client


def definition_post(calendar: BusinessCalendar, **overrides) -> dict:
    data = {
        "slug": "invoice-fast",
        "name": "Invoice fast",
        "description": "",
        "process": "",
        "start_system": "",
        "start_kind": "contract.approved",
        "start_status": "ok",
        "start_key_type": "",
        "stop_system": "",
        "stop_kind": "invoice.posted",
        "stop_status": "ok",
        "stop_key_type": "",
        "pause_conditions": "[]",
        "target": "4h",
        "calendar": calendar.pk,
        "at_risk_percent": 80,
        "breach_queue": "",
        "breach_category_slug": "control",
    }
    data.update(overrides)
    return data


def test_manager_creates_edits_and_deactivates_a_definition_all_audited(manager, reference):
    calendar = BusinessCalendarFactory()
    created = manager.post("/slas/definitions/new/", definition_post(calendar))
    assert created.status_code == 302, created.content.decode()[:2000]
    definition = SlaDefinition.objects.get()
    assert definition.target == 4 * H
    page = manager.get(f"/slas/definitions/{definition.pk}/")
    assert page.status_code == 200 and b"Invoice fast" in page.content
    edited = manager.post(
        f"/slas/definitions/{definition.pk}/", definition_post(calendar, target="6h", version=definition.version)
    )
    assert edited.status_code == 302
    manager.post(f"/slas/definitions/{definition.pk}/active/", {"is_active": "0", "version": "2"})
    definition.refresh_from_db()
    assert (definition.target, definition.is_active, definition.version) == (6 * H, False, 3)
    actions = list(AuditEntry.objects.filter(object_type="slas.sladefinition").values_list("action", flat=True))
    assert actions == ["sla_definition.created", "sla_definition.updated", "sla_definition.deactivated"]
    update = AuditEntry.objects.get(action="sla_definition.updated")
    assert (update.before["target_seconds"], update.after["target_seconds"]) == (4 * 3600, 6 * 3600)
    listing = manager.get("/slas/definitions/")
    assert listing.status_code == 200 and b"inactive" in listing.content


def test_definition_whose_start_and_stop_match_the_same_event_is_refused(manager, reference):
    calendar = BusinessCalendarFactory()
    answer = manager.post("/slas/definitions/new/", definition_post(calendar, stop_kind="contract.*"))
    assert answer.status_code == 200
    assert b"would also match the start" in answer.content
    assert not SlaDefinition.objects.exists()


def test_stale_edit_is_refused_on_the_form(manager, reference):
    definition = SlaDefinitionFactory()
    answer = manager.post(
        f"/slas/definitions/{definition.pk}/", definition_post(definition.calendar, slug=definition.slug, version=99)
    )
    assert answer.status_code == 200 and b"changed since version 99" in answer.content
    definition.refresh_from_db()
    assert definition.version == 1


def calendar_post(**overrides) -> dict:
    data = {"slug": "fr", "name": "France", "time_zone": "Europe/Paris", "description": ""}
    data.update({day: "" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    data.update(overrides)
    return data


def test_calendar_with_lunch_break_is_created(manager, db):
    answer = manager.post("/slas/calendars/new/", calendar_post(mon="09:00-12:30, 13:30-17:00", fri="09:00-15:00"))
    assert answer.status_code == 302
    calendar = BusinessCalendar.objects.get(slug="fr")
    assert calendar.working_hours == {"mon": [["09:00", "12:30"], ["13:30", "17:00"]], "fri": [["09:00", "15:00"]]}
    assert AuditEntry.objects.filter(action="calendar.created", object_id=str(calendar.pk)).exists()


@pytest.mark.parametrize(
    ("overrides", "text"),
    [
        ({}, b"at least one working interval"),
        ({"mon": "17:00-09:00"}, b"must start before it ends"),
        ({"tue": "08:00-12:00, 11:00-13:00"}, b"overlap"),
        ({"wed": "all day"}, b"is not an interval"),
        ({"mon": "08:00-17:00", "time_zone": "Mars/Olympus"}, b"unknown time zone"),
    ],
)
def test_bad_calendars_are_refused_with_a_reason_and_nothing_saved(manager, db, overrides, text):
    answer = manager.post("/slas/calendars/new/", calendar_post(**overrides))
    assert answer.status_code == 200
    assert text in answer.content
    assert not BusinessCalendar.objects.exists()


def csv_file(text: str) -> SimpleUploadedFile:
    return SimpleUploadedFile("holidays.csv", text.encode(), content_type="text/csv")


def test_holiday_csv_import(manager, db):
    calendar = BusinessCalendarFactory()
    Holiday.objects.create(calendar=calendar, date=date(2026, 12, 25), name="Xmas")
    answer = manager.post(
        f"/slas/calendars/{calendar.pk}/holidays/",
        {
            "file": csv_file(
                "date,name\n2026-12-24,Christmas Eve\n2026-12-25,Christmas Day\n\n2026-12-31,New Year's Eve\n"
            )
        },
    )
    assert answer.status_code == 302
    assert dict(calendar.holidays.values_list("date", "name")) == {
        date(2026, 12, 24): "Christmas Eve",
        date(2026, 12, 25): "Christmas Day",
        date(2026, 12, 31): "New Year's Eve",
    }
    entry = AuditEntry.objects.get(action="calendar.holidays_imported")
    assert (entry.after["created"], entry.after["renamed"]) == (2, 1)


def test_holiday_csv_with_a_bad_date_saves_nothing_and_names_the_lines(manager, db):
    calendar = BusinessCalendarFactory()
    answer = manager.post(
        f"/slas/calendars/{calendar.pk}/holidays/",
        {"file": csv_file("2026-12-24,Christmas Eve\n2026-02-30,Nope\n24.12.2026,Wrong format\n2026-12-24,Twice\n")},
    )
    assert answer.status_code == 200
    body = answer.content.decode()
    assert "line 2: &#x27;2026-02-30&#x27; is not a date (YYYY-MM-DD)" in body
    assert "line 3: &#x27;24.12.2026&#x27; is not a date" in body
    assert "line 4: 2026-12-24 is already on line 1" in body
    assert not Holiday.objects.exists()
    assert not AuditEntry.objects.filter(action="calendar.holidays_imported").exists()


def test_finance_operations_read_but_may_not_edit(ops, reference):
    definition = SlaDefinitionFactory()
    assert ops.get("/slas/definitions/").status_code == 200
    assert ops.get("/slas/calendars/").status_code == 200
    assert ops.get("/slas/clocks/").status_code == 200
    assert ops.get("/slas/definitions/new/").status_code == 403
    assert ops.post(f"/slas/definitions/{definition.pk}/active/", {"is_active": "0"}).status_code == 403
    assert ops.get(f"/slas/calendars/{definition.calendar_id}/").status_code == 403
    assert ops.post("/slas/calendars/new/", calendar_post(mon="08:00-17:00")).status_code == 403
    definition.refresh_from_db()
    assert definition.is_active and not BusinessCalendar.objects.filter(slug="fr").exists()


@pytest.fixture
def at_risk(reference, ingest, frozen_now):
    """One clock at risk (30 minutes left) on an order-to-cash transaction of entity DE01."""
    definition = SlaDefinitionFactory(name="Invoice fast")
    txns = ingest(event("contract.approved", contract="C-1"))
    clocks_evaluate_transactions(txn_ids=txns, now=T0 + 3.5 * H)
    frozen_now(T0 + 3.5 * H)
    return definition, txns[0]


def test_clocks_page_filters(manager, at_risk):
    definition, txn_id = at_risk
    page = manager.get("/slas/clocks/", {"status": "at_risk", "definition": definition.slug})
    assert page.status_code == 200
    assert f'href="/transactions/{txn_id}/"'.encode() in page.content and b"30 min left" in page.content
    assert f'href="/transactions/{txn_id}/"'.encode() not in manager.get("/slas/clocks/", {"status": "met"}).content


def test_transaction_page_shows_its_clocks_with_time_left(manager, at_risk):
    _, txn_id = at_risk
    page = manager.get(f"/transactions/{txn_id}/")
    assert page.status_code == 200
    body = page.content.decode()
    assert 'data-testid="transaction-sla-clocks"' in body and "Invoice fast" in body and "30 min left" in body


def test_queue_page_shows_at_risk_clocks_routed_to_it(manager, at_risk):
    # Control breaches go to the compliance queue by the default routing rules.
    rules = RoutingRule.objects.filter(is_active=True).order_by("position", "id")
    rule = next(r for r in rules if "control" in r.categories and not (r.system or r.kind or r.entity))
    queue = rule.queue
    page = manager.get(f"/queues/{queue.slug}/")
    assert page.status_code == 200 and b'data-testid="queue-sla-at-risk"' in page.content
    other = Queue.objects.exclude(pk=queue.pk).first()
    assert b'data-testid="queue-sla-at-risk"' not in manager.get(f"/queues/{other.slug}/").content

"""Default calendars and SLA definitions from load_reference_data."""

from datetime import date

from django.core.management import call_command

from slas.models import BusinessCalendar, Holiday, SlaDefinition
from slas.reference import slas_reference_data_load


def test_reference_data_loads_calendars_holidays_and_the_four_business_slas(db):
    call_command("load_reference_data", verbosity=0)
    de = BusinessCalendar.objects.get(slug="de")
    assert de.time_zone == "Europe/Berlin" and de.working_hours["mon"] == [["08:00", "18:00"]]
    assert Holiday.objects.filter(calendar=de, date=date(2026, 10, 3)).exists()  # German Unity Day
    assert Holiday.objects.filter(calendar=de, date=date(2027, 12, 25)).exists()
    us = BusinessCalendar.objects.get(slug="us")
    assert Holiday.objects.filter(calendar=us, date=date(2026, 7, 3)).exists()  # Independence Day (observed)
    definitions = {d.slug: d for d in SlaDefinition.objects.select_related("process")}
    assert set(definitions) == {
        "customer-created-in-erp",
        "invoice-after-contract",
        "payment-synced-to-erp",
        "evidence-after-posting",
    }
    assert definitions["invoice-after-contract"].process.slug == "order-to-cash"
    for definition in definitions.values():
        definition.full_clean()  # every default passes the checks a manager's edit must pass


def test_reference_data_is_idempotent_and_keeps_edits(db):
    call_command("load_reference_data", verbosity=0)
    Holiday.objects.filter(calendar__slug="de", date=date(2026, 10, 3)).delete()
    SlaDefinition.objects.filter(slug="invoice-after-contract").update(name="Edited", is_active=False)
    assert slas_reference_data_load() == {"calendars": 0, "holidays": 0, "sla_definitions": 0}
    assert not Holiday.objects.filter(calendar__slug="de", date=date(2026, 10, 3)).exists()
    assert SlaDefinition.objects.get(slug="invoice-after-contract").name == "Edited"

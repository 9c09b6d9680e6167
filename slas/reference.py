"""Default business calendars and SLA definitions, loaded by `load_reference_data`.

The definitions are the four business SLAs of the finance integration guide, matched to the event kinds of the
default process definitions (transactions/reference.py) and of the systems they come from.
"""

from datetime import date, timedelta

import holidays
from django.db import transaction

from console.lib.audit import audited_create
from slas.models import BusinessCalendar, Holiday, SlaDefinition
from slas.services.calendars import calendar_snapshot
from slas.services.definitions import sla_definition_snapshot
from transactions.models import ProcessDefinition

HOLIDAY_YEARS = (2026, 2027)
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
# (slug, name, time zone, working hours, country for the `holidays` package, description)
DEFAULT_CALENDARS = [
    (
        "de",
        "Germany (DE01)",
        "Europe/Berlin",
        {day: [["08:00", "18:00"]] for day in WEEKDAYS},
        "DE",
        "Monday to Friday 08:00-18:00 in Berlin; German national public holidays",
    ),
    (
        "us",
        "United States (US01)",
        "America/New_York",
        {day: [["09:00", "17:00"]] for day in WEEKDAYS},
        "US",
        "Monday to Friday 09:00-17:00 in New York; US federal holidays",
    ),
]

H = timedelta(hours=1)
DATA_QUALITY_PAUSE = [{"case_category": "data_quality"}]
# slug: (name, process slug or None, start (system, kind, status), stop (system, kind, status), target, pauses,
#        breach category, description)
DEFAULT_DEFINITIONS = {
    "customer-created-in-erp": (
        "Customer created in ERP after CRM account approval",
        "customer-master-sync",
        ("", "account.approved|account.created", "ok"),
        ("", "business_partner.created|*businesspartner*.created*", "ok"),
        4 * H,
        DATA_QUALITY_PAUSE,
        "control",
        "A customer approved in the CRM is billable only once the ERP business partner exists. "
        "Paused while master data is being corrected (an open data-quality case).",
    ),
    "invoice-after-contract": (
        "Invoice generated after contract approval",
        "order-to-cash",
        ("", "contract.approved", "ok"),
        ("", "invoice.posted|*billingdocument*.created*", "ok"),
        20 * H,
        DATA_QUALITY_PAUSE,
        "control",
        "Two working days from the approved contract to the posted invoice (revenue leakage if it slips).",
    ),
    "payment-synced-to-erp": (
        "Payment synchronised to ERP after receipt",
        "payment-application",
        ("", "payment.received|payment_intent.succeeded|charge.succeeded|invoice.paid", "ok"),
        ("", "payment.applied", "ok"),
        4 * H,
        DATA_QUALITY_PAUSE,
        "control",
        "Cash received is applied in the ERP within four working hours, so that receivables and dunning are right.",
    ),
    "evidence-after-posting": (
        "Control evidence captured after posting",
        None,
        # Journal postings (SAP JournalEntry events): close evidence follows them; an invoice's evidence is captured
        # once it is paid, which the invoice SLAs measure. No process: a lone journal matches none yet.
        ("", "journal.posted|*journalentry*.created*", "ok"),
        ("", "evidence.captured|control.evidence_captured", "ok"),
        24 * H,
        [],
        "control",
        "Evidence of the control (SOX) is captured within 24 working hours of the posting it covers.",
    ),
}
DEFAULT_CALENDAR = "de"


def _holidays(country: str) -> list[tuple[date, str]]:
    return sorted(holidays.country_holidays(country, years=HOLIDAY_YEARS).items())


@transaction.atomic
def slas_reference_data_load(*, actor: str = "system:reference-data") -> dict[str, int]:
    """Create the default calendars (with their holidays) and SLA definitions that do not exist yet.

    Existing ones, maybe edited or deactivated, are left alone; holidays are only added to a calendar created now, so
    that a date a manager removed does not come back. A definition whose process is missing is skipped.
    """
    created = {"calendars": 0, "holidays": 0, "sla_definitions": 0}
    for slug, name, zone, hours, country, description in DEFAULT_CALENDARS:
        if BusinessCalendar.objects.filter(slug=slug).exists():
            continue
        calendar = BusinessCalendar(slug=slug, name=name, time_zone=zone, working_hours=hours, description=description)
        calendar.full_clean()
        audited_create(calendar, actor=actor, action="calendar.created", snapshot=calendar_snapshot)
        days = _holidays(country)
        Holiday.objects.bulk_create([Holiday(calendar=calendar, date=day, name=label[:120]) for day, label in days])
        created["calendars"] += 1
        created["holidays"] += len(days)
    calendar = BusinessCalendar.objects.filter(slug=DEFAULT_CALENDAR).first()
    if calendar is None:
        return created
    processes = {p.slug: p for p in ProcessDefinition.objects.all()}
    for slug, (name, process, start, stop, target, pauses, category, description) in DEFAULT_DEFINITIONS.items():
        if SlaDefinition.objects.filter(slug=slug).exists() or (process and process not in processes):
            continue
        definition = SlaDefinition(
            slug=slug,
            name=name,
            description=description,
            process=processes.get(process) if process else None,
            start_system=start[0],
            start_kind=start[1],
            start_status=start[2],
            stop_system=stop[0],
            stop_kind=stop[1],
            stop_status=stop[2],
            target=target,
            pause_conditions=pauses,
            calendar=calendar,
            breach_category_slug=category,
        )
        definition.full_clean()
        audited_create(definition, actor=actor, action="sla_definition.created", snapshot=sla_definition_snapshot)
        created["sla_definitions"] += 1
    return created

"""Default business calendars, SLA definitions and monitors, loaded by `load_reference_data`.

The definitions are the four business SLAs of the finance integration guide, matched to the event kinds of the
default process definitions (transactions/reference.py) and of the systems they come from. The monitors are the
silences a finance integration estate must notice, in the kinds the real systems send: SAP S/4HANA business events
from Event Mesh (`sap.s4.beh.<object>.v1.<Object>.<Action>.v1`), Stripe webhooks bridged to CloudEvents, MuleSoft
spans, the compliance vault's native events (see transactions/simulation/catalogue.py).
"""

from datetime import date, time, timedelta

import holidays
from django.db import transaction

from console.lib.audit import audited_create
from slas.choices import EvidenceDirection, VolumeMode
from slas.models import BusinessCalendar, EvidenceMonitor, Holiday, SlaDefinition, VolumeMonitor
from slas.services.calendars import calendar_snapshot
from slas.services.definitions import sla_definition_snapshot
from slas.services.monitors import evidence_monitor_snapshot, volume_monitor_snapshot
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

SAP_BILLING_DOCUMENT_CREATED = "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1"
SAP_JOURNAL_ENTRY_CREATED = "sap.s4.beh.journalentry.v1.JournalEntry.Created.v1"
# Bank statements (camt.053) imported into SAP, announced by its bank statement business event or by the
# connectivity layer's import event.
BANK_STATEMENT_KINDS = "sap.s4.beh.bankstatement.v1.BankStatement.Created.v1|bank_statement.imported|camt.053*"
# A supplier's bank details change in SAP (business partner / supplier master).
VENDOR_BANK_CHANGE_KINDS = "sap.s4.beh.supplier.v1.Supplier.Changed.v1|vendor.bank_details.changed"

VOLUME_MONITORS: list[dict] = [
    {
        "slug": "de01-customer-invoices-daily",
        "name": "DE01 customer invoices: at least 200 per business day",
        # Zuora posts the invoice with its legal entity; SAP's business event carries only the company code (1010),
        # so it counts where an interface adds the entity.
        "system": "zuora-billing|sap-s4",
        "kind": "invoice.posted|" + SAP_BILLING_DOCUMENT_CREATED,
        "entity": "DE01",
        "mode": VolumeMode.DAILY_DEADLINE,
        "deadline_time": time(18, 0),
        "min_count": 200,
        "category_slug": "platform",
    },
    {
        "slug": "bank-statement-by-0600",
        "name": "Nightly bank statement (camt.053) imported by 06:00 on working days",
        "system": "sap-s4|bank-*",
        "kind": BANK_STATEMENT_KINDS,
        "mode": VolumeMode.DAILY_DEADLINE,
        "deadline_time": time(6, 0),
        "min_count": 1,
        "working_hours_only": False,
        "category_slug": "platform",
    },
    {
        "slug": "ipaas-silent-30min",
        "name": "MuleSoft iPaaS sends nothing for 30 minutes of working time",
        "system": "mulesoft-ipaas",
        "kind": "*",
        "mode": VolumeMode.WINDOW,
        "window": timedelta(minutes=30),
        "min_count": 1,
        "category_slug": "platform",
    },
    {
        "slug": "stripe-webhooks-silent-2h",
        "name": "Stripe webhooks stop arriving for 2 hours of working time",
        "system": "stripe-payments",
        "kind": "*",
        "mode": VolumeMode.WINDOW,
        "window": timedelta(hours=2),
        "min_count": 1,
        "category_slug": "platform",
    },
    {
        "slug": "sap-journal-flood",
        "name": "SAP journal entries: more than 5,000 in an hour (a runaway posting job)",
        "system": "sap-s4",
        "kind": SAP_JOURNAL_ENTRY_CREATED,
        "mode": VolumeMode.WINDOW,
        "window": timedelta(hours=1),
        "min_count": 0,
        "max_count": 5000,
        "working_hours_only": False,
        "category_slug": "platform",
    },
]

EVIDENCE_MONITORS: list[dict] = [
    {
        "slug": "journal-evidence-24h",
        "name": "Control evidence captured within 24 business hours of a journal entry posting",
        # Any process: a journal entry whose evidence never came is not recognised as close evidence at all.
        "process": None,
        "trigger_system": "sap-s4",
        "trigger_kind": SAP_JOURNAL_ENTRY_CREATED,
        "evidence_system": "compliance-vault",
        "evidence_kind": "evidence.captured",
        "direction": EvidenceDirection.AFTER,
        "window": timedelta(hours=24),
    },
    {
        "slug": "vendor-bank-change-approval",
        "name": "Approval before a vendor bank-detail change is posted",
        "process": None,
        "trigger_system": "sap-s4",
        "trigger_kind": VENDOR_BANK_CHANGE_KINDS,
        "evidence_kind": "vendor.bank_details.approved",
        "evidence_approval_step": "vendor-master-approval|four-eyes*",
        "direction": EvidenceDirection.BEFORE,
        "window": timedelta(hours=5 * 10),
    },
]


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


@transaction.atomic
def monitors_reference_data_load(*, actor: str = "system:reference-data") -> dict[str, int]:
    """The default monitors that do not exist yet (by slug), on the default calendar; monitors users edited or
    deactivated are left alone. Runs after slas_reference_data_load (which creates the calendar)."""
    calendar = BusinessCalendar.objects.filter(slug=DEFAULT_CALENDAR).first()
    if calendar is None:
        return {"volume_monitors": 0, "evidence_monitors": 0}
    processes = {p.slug: p for p in ProcessDefinition.objects.all()}
    created = {"volume_monitors": 0, "evidence_monitors": 0}
    for fields in VOLUME_MONITORS:
        if VolumeMonitor.objects.filter(slug=fields["slug"]).exists():
            continue
        monitor = VolumeMonitor(calendar=calendar, **fields)
        monitor.full_clean()
        audited_create(monitor, actor=actor, action="volume_monitor.created", snapshot=volume_monitor_snapshot)
        created["volume_monitors"] += 1
    for fields in EVIDENCE_MONITORS:
        if EvidenceMonitor.objects.filter(slug=fields["slug"]).exists():
            continue
        values = {**fields, "process": processes.get(fields["process"]) if fields["process"] else None}
        monitor = EvidenceMonitor(calendar=calendar, **values)
        monitor.full_clean()
        audited_create(monitor, actor=actor, action="evidence_monitor.created", snapshot=evidence_monitor_snapshot)
        created["evidence_monitors"] += 1
    return created

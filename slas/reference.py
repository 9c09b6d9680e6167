"""Default monitors loaded by `load_reference_data`: the silences a finance integration estate must notice.

Kinds are what the real systems send: SAP S/4HANA business events from Event Mesh
(`sap.s4.beh.<object>.v1.<Object>.<Action>.v1`), Stripe webhooks bridged to CloudEvents, MuleSoft spans, the
compliance vault's native events (see transactions/reference.py and transactions/simulation/catalogue.py).
"""

from datetime import date, time, timedelta

import holidays as holiday_data
from django.db import transaction

from console.lib.audit import audit_record
from slas.choices import EvidenceDirection, VolumeMode
from slas.models import BusinessCalendar, EvidenceMonitor, Holiday, VolumeMonitor
from slas.services.monitors import evidence_monitor_snapshot, volume_monitor_snapshot
from transactions.models import ProcessDefinition

SAP_BILLING_DOCUMENT_CREATED = "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1"
SAP_JOURNAL_ENTRY_CREATED = "sap.s4.beh.journalentry.v1.JournalEntry.Created.v1"
# Bank statements (camt.053) imported into SAP, announced by its bank statement business event or by the
# connectivity layer's import event.
BANK_STATEMENT_KINDS = "sap.s4.beh.bankstatement.v1.BankStatement.Created.v1|bank_statement.imported|camt.053*"
# A supplier's bank details change in SAP (business partner / supplier master).
VENDOR_BANK_CHANGE_KINDS = "sap.s4.beh.supplier.v1.Supplier.Changed.v1|vendor.bank_details.changed"

# The working calendar monitors use unless edited: Frankfurt working days and hours, German national holidays.
CALENDAR_SLUG = "de-frankfurt"
CALENDAR = {
    "name": "Germany (Frankfurt), Mon-Fri 08:00-18:00",
    "time_zone": "Europe/Berlin",
    "working_hours": {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
    "description": "German national holidays; the entities DE01 and the shared service centre",
}

VOLUME_MONITORS: list[dict] = [
    {
        "slug": "de01-customer-invoices-daily",
        "name": "DE01 customer invoices: at least 200 per business day",
        "system": "sap-s4",
        "kind": SAP_BILLING_DOCUMENT_CREATED,
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


def _calendar_ensure(actor: str) -> tuple[BusinessCalendar, bool]:
    calendar, created = BusinessCalendar.objects.get_or_create(slug=CALENDAR_SLUG, defaults=CALENDAR)
    if created:
        year = date.today().year
        german = holiday_data.country_holidays("DE", years=range(year - 1, year + 3))
        Holiday.objects.bulk_create([Holiday(calendar=calendar, date=day, name=name) for day, name in german.items()])
        audit_record(
            actor=actor,
            action="calendar.created",
            obj=calendar,
            after={**CALENDAR, "slug": CALENDAR_SLUG, "holidays": len(german)},
        )
    return calendar, created


@transaction.atomic
def monitors_reference_data_load(*, actor: str = "system:reference-data") -> dict[str, int]:
    """Create the default monitors that do not exist yet (by slug); monitors users edited are left alone."""
    calendar, _ = _calendar_ensure(actor)
    created = {"volume_monitors": 0, "evidence_monitors": 0}
    for fields in VOLUME_MONITORS:
        if VolumeMonitor.objects.filter(slug=fields["slug"]).exists():
            continue
        monitor = VolumeMonitor.objects.create(calendar=calendar, **fields)
        audit_record(actor=actor, action="volume_monitor.created", obj=monitor, after=volume_monitor_snapshot(monitor))
        created["volume_monitors"] += 1
    processes = dict(ProcessDefinition.objects.values_list("slug", "pk"))
    for fields in EVIDENCE_MONITORS:
        if EvidenceMonitor.objects.filter(slug=fields["slug"]).exists():
            continue
        values = {**fields, "process_id": processes.get(fields["process"]) if fields["process"] else None}
        del values["process"]
        monitor = EvidenceMonitor.objects.create(calendar=calendar, **values)
        audit_record(
            actor=actor, action="evidence_monitor.created", obj=monitor, after=evidence_monitor_snapshot(monitor)
        )
        created["evidence_monitors"] += 1
    return created


__all__ = ["EVIDENCE_MONITORS", "VOLUME_MONITORS", "monitors_reference_data_load"]

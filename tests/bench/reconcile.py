"""Reconciliation benchmark (make bench-reconcile): the default reconciliation rules over N events on PostgreSQL.

Stores order-to-cash and procure-to-pay transactions whose events carry their facts under the names the real systems
use (Salesforce CPQ, AvaTax, Zuora, SAP S/4HANA table fields), with the simulator's silent mismatches at its rates,
batch by batch: ingest, correlate, then `reconcile_transactions` on the transactions the batch touched, as the task
after correlation does. Prints events/s of reconciliation, the per-batch reconciliation cost when the store holds 10%
of N and when it holds N (the ratio shows whether a batch's cost grows with the store: target <= 1.5), the verdicts,
the reconciliation page's and ROI dashboard's response times at that size, and the load average (the machine is
shared). Uses its own database (closeloop_bench_reconcile), rebuilt on every run.
"""

import argparse
import os
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/closeloop_bench_reconcile")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("LOG_LEVEL", "WARNING")

from tests.bench.correlate import _recreate_database, _vacuum, percentile  # noqa: E402
from transactions.simulation.catalogue import (  # noqa: E402
    ENTITIES,
    ORDER_TO_CASH,
    PROCURE_TO_PAY,
    SAP_BILLING_DOCUMENT_CREATED,
    SAP_PURCHASE_ORDER_CREATED,
    SAP_SALES_ORDER_CREATED,
    SAP_SUPPLIER_INVOICE_CREATED,
    SILENT_MISMATCHES,
    SUPPLIERS,
)

BATCH = 1000
PROBE_BATCHES = 15
P2P_SHARE = 0.3
PAGE_REQUESTS = 20


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Estate:
    """Seeded transactions with their facts; the silent mismatches strike at the simulator's rates."""

    def __init__(self, seed: int, start: datetime) -> None:
        self.rng = random.Random(seed)
        self.start = start
        self.number = 0
        self.supplier_invoices: list[tuple[str, str, str]] = []
        self.mismatches: dict[str, int] = {m.name: 0 for m in SILENT_MISMATCHES}

    def _mismatch(self, process: str) -> str | None:
        draw = self.rng.random()
        for m in SILENT_MISMATCHES:
            if m.process == process:
                draw -= m.rate
                if draw < 0:
                    return m.name
        return None

    def next_records(self) -> list[dict]:
        self.number += 1
        at = self.start + timedelta(seconds=self.number * 11)
        if self.rng.random() < P2P_SHARE:
            return self._p2p(self.number, at)
        return self._o2c(self.number, at)

    def _record(self, n: int, step: str, at: datetime, system: str, kind: str, keys: dict, **fields) -> dict:
        return {
            "event_id": f"{n}-{step}",
            "occurred_at": _iso(at),
            "system": system,
            "kind": kind,
            "status": "ok",
            "business_keys": keys,
            "attributes": fields.pop("attributes", {}),
            **fields,
        }

    def _o2c(self, n: int, at: datetime) -> list[dict]:
        entity = self.rng.choice(list(ENTITIES.values()))
        amount = Decimal(self.rng.randint(40, 6000) * 100)
        silent = self._mismatch(ORDER_TO_CASH)
        if silent:
            self.mismatches[silent] += 1
        billed, currency, tax_code, booked = amount, entity.currency, entity.tax_code, entity.company_code
        if silent == "amount_mismatch":
            billed = (amount * Decimal("1.05")).quantize(Decimal("0.01"))
        elif silent == "currency_mismatch":
            currency = "USD" if entity.currency != "USD" else "EUR"
        elif silent == "tax_code_changed":
            tax_code = "P0000000"
        elif silent == "entity_mismatch":
            booked = next(e.company_code for e in ENTITIES.values() if e.code != entity.code)
        tax = (billed * entity.tax_rate).quantize(Decimal("0.01"))
        contract, order, invoice = f"C-{n}", f"{n:010d}", 90_000_000 + n
        minute = timedelta(minutes=1)
        records = [
            self._record(
                n,
                "crm",
                at,
                "salesforce-crm",
                "contract.approved",
                {"contract": contract},
                amount=str(amount),
                currency=entity.currency,
                entity=entity.code,
                attributes={
                    "SBQQ__Quote__c": f"a0q{n:015d}",
                    "SBQQ__NetAmount__c": str(amount),
                    "CurrencyIsoCode": entity.currency,
                    "SBQQ__TaxCode__c": entity.tax_code,
                },
            ),
            self._record(
                n,
                "so",
                at + minute,
                "sap-s4",
                SAP_SALES_ORDER_CREATED,
                {"order": order, "contract": contract},
                attributes={
                    "data": {"SalesOrder": order, "BUKRS_VF": booked, "NETWR": str(amount), "WAERK": entity.currency}
                },
            ),
            self._record(
                n,
                "tax",
                at + 2 * minute,
                "avalara-tax",
                "tax.calculated",
                {"order": str(n), "invoice": str(invoice)},
                amount=str(tax),
                currency=currency,
                entity=entity.code,
                attributes={
                    "companyCode": booked,
                    "code": str(invoice),
                    "taxCode": tax_code,
                    "totalAmount": str(billed),
                    "totalTax": str(tax),
                    "currencyCode": currency,
                },
            ),
        ]
        invoices = [invoice] + ([invoice + 50_000_000] if silent == "duplicate_milestone_invoice" else [])
        for i, number in enumerate(invoices):
            later = at + (3 + 2 * i) * minute
            records.append(
                self._record(
                    n,
                    f"inv{i}",
                    later,
                    "zuora-billing",
                    "invoice.posted",
                    {"order": str(n), "invoice": str(number)},
                    amount=str(billed + tax),
                    currency=currency,
                    entity=entity.code,
                    attributes={
                        "invoiceNumber": str(number),
                        "amountWithoutTax": str(billed),
                        "taxAmount": str(tax),
                        "currency": currency,
                        "taxCode": tax_code,
                        "Milestone__c": "M1",
                    },
                )
            )
            records.append(
                self._record(
                    n,
                    f"bill{i}",
                    later + minute,
                    "sap-s4",
                    SAP_BILLING_DOCUMENT_CREATED,
                    {"invoice": f"{number:010d}", "order": order},
                    attributes={
                        "data": {
                            "BillingDocument": f"{number:010d}",
                            "BUKRS": booked,
                            "NETWR": str(billed),
                            "WAERK": currency,
                            "MWSKZ": entity.sap_tax_code,
                            "FPLNR": order,
                            "FPLTR": "000001",
                        }
                    },
                )
            )
        records.append(
            self._record(
                n,
                "paid",
                at + 30 * minute,
                "stripe-payments",
                "invoice.paid",
                {"invoice": str(invoice), "payment": f"pi_{n}"},
            )
        )
        return records

    def _p2p(self, n: int, at: datetime) -> list[dict]:
        supplier = self.rng.choice(SUPPLIERS)
        entity = ENTITIES[supplier.entity]
        amount, reference = str(Decimal(self.rng.randint(400, 15_000_000)) / 100), f"INV-{n}"
        silent = self._mismatch(PROCURE_TO_PAY)
        if silent and self.supplier_invoices:
            self.mismatches[silent] += 1
            lifnr, reference, amount = self.rng.choice(self.supplier_invoices)
            supplier = next(s for s in SUPPLIERS if s.erp == lifnr)
            entity = ENTITIES[supplier.entity]
        else:
            self.supplier_invoices.append((supplier.erp, reference, amount))
            del self.supplier_invoices[:-500]
        po, invoice = str(4_500_000_000 + n), str(5_100_000_000 + n)
        return [
            self._record(
                n,
                "po",
                at,
                "sap-s4",
                SAP_PURCHASE_ORDER_CREATED,
                {"purchase_order": po, "supplier": supplier.erp},
                attributes={"data": {"PurchaseOrder": po, "BUKRS": entity.company_code, "LIFNR": supplier.erp}},
            ),
            self._record(
                n,
                "si",
                at + timedelta(hours=1),
                "sap-s4",
                SAP_SUPPLIER_INVOICE_CREATED,
                {"supplier_invoice": invoice, "purchase_order": po},
                attributes={
                    "data": {
                        "SupplierInvoice": invoice,
                        "BUKRS": entity.company_code,
                        "LIFNR": supplier.erp,
                        "XBLNR": reference,
                        "RMWWR": amount,
                        "WAERS": entity.currency,
                    }
                },
            ),
            self._record(
                n,
                "pay",
                at + timedelta(hours=30),
                "sap-s4",
                "payment.released",
                {"supplier_invoice": invoice, "payment": f"{1_500_000_000 + n}"},
                amount=amount,
                currency=entity.currency,
                entity=entity.code,
            ),
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--page-requests", type=int, default=PAGE_REQUESTS)
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        sys.exit("bench-reconcile runs on PostgreSQL: set DATABASE_URL=postgres://...")
    if "bench" not in settings.DATABASES["default"]["NAME"]:
        sys.exit("bench-reconcile rebuilds its database: give it one whose name contains 'bench'")
    from django.core.management import call_command
    from django.db import connection

    _recreate_database()
    call_command("migrate", verbosity=0)
    call_command("load_reference_data", verbosity=0, stdout=open(os.devnull, "w"))  # noqa: SIM115

    from exceptions import tasks as exception_tasks
    from exceptions.models import ReconciliationResult, ReconciliationRule
    from exceptions.services import reconcile_transactions
    from transactions import tasks
    from transactions.models import Event, Transaction
    from transactions.records import DecodedRecord
    from transactions.services import batch_correlate, ingest_source_create, records_ingest

    # Each stage is timed on its own: ingest must not run correlation through the eager task, and correlation hands
    # the transactions it touched to reconciliation here instead of through the task (classification and recovered
    # cases belong to the exceptions benchmark).
    touched: list[int] = []
    tasks.correlate_batch.delay = lambda *a, **k: None
    exception_tasks.classify_failures.delay = lambda *a, **k: None
    exception_tasks.resolve_recovered_cases.delay = lambda *a, **k: None
    exception_tasks.reconcile_transactions.delay = lambda ids, *a, **k: touched.extend(ids)

    rules = ReconciliationRule.objects.filter(is_active=True).count()
    source = ingest_source_create(name="bench", actor="system:bench")
    # Recent enough for the page's default 12 weeks: the figures below are the ones people would see.
    estate = Estate(args.seed, datetime.now(UTC) - timedelta(days=60))
    pending: list[dict] = []
    stored = 0
    seconds = {"ingest": 0.0, "correlate": 0.0, "reconcile": 0.0}
    reconciled_events = 0
    probes: dict[str, list[float]] = {}
    probe_points = {"10%": args.events // 10, "100%": args.events}
    query_time: dict[str, dict[str, list[float]]] = {label: {} for label in probe_points}
    began = last_print = time.perf_counter()

    while stored < args.events:
        while len(pending) < BATCH:
            pending += estate.next_records()
        batch, pending = pending[:BATCH], pending[BATCH:]
        probing = [
            label
            for label, point in probe_points.items()
            if stored >= point - PROBE_BATCHES * BATCH and len(probes.get(label, [])) < PROBE_BATCHES
        ]
        if probing and not probes.get(probing[0]):
            _vacuum()
            with connection.cursor() as cursor:
                for table in ("exceptions_reconciliationresult", "exceptions_reconciliationkey"):
                    cursor.execute(f"VACUUM ANALYZE {table}")
        decoded = [DecodedRecord(i, r, f"event:{r['event_id']}", None, r) for i, r in enumerate(batch)]
        t0 = time.perf_counter()
        outcome = records_ingest(source=source, channel="native", records=decoded)
        t1 = time.perf_counter()
        touched.clear()
        batch_correlate(batch_id=outcome.batch_id)
        t2 = time.perf_counter()
        ids = sorted(set(touched))
        if probing:
            with connection.execute_wrapper(QueryClock([query_time[label] for label in probing])):
                reconcile_transactions(ids)
        else:
            reconcile_transactions(ids)
        t3 = time.perf_counter()
        seconds["ingest"] += t1 - t0
        seconds["correlate"] += t2 - t1
        seconds["reconcile"] += t3 - t2
        stored += outcome.accepted
        reconciled_events += outcome.accepted
        for label in probing:
            probes.setdefault(label, []).append(t3 - t2)
            if label == "10%" and len(probes[label]) == PROBE_BATCHES:
                # Printed as soon as it is known: a full run is long on a shared machine.
                median = statistics.median(probes[label]) * 1000
                print(f"bench: per-batch reconciliation at {probe_points[label]:,} events: {median:.1f} ms", flush=True)
        now = time.perf_counter()
        if now - last_print > 10:
            rate = stored / (now - began)
            print(
                f"bench: {stored:,}/{args.events:,} events, {rate:,.0f} ev/s end to end, "
                f"reconcile {reconciled_events / seconds['reconcile']:,.0f} ev/s, "
                f"ETA {(args.events - stored) / rate:.0f}s",
                flush=True,
            )
            last_print = now
    total = time.perf_counter() - began
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

    results = ReconciliationResult.objects.count()
    by_status = dict(
        ReconciliationResult.objects.values_list("status").annotate(n=django.db.models.Count("id")).order_by()
    )
    print()
    print(f"events stored:            {Event.objects.count():,} in {Transaction.objects.count():,} transactions")
    print(
        f"rules active:             {rules}; results {results:,}: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(by_status.items()))
    )
    print("mismatches injected:      " + ", ".join(f"{k} {v:,}" for k, v in estate.mismatches.items()))
    print(f"end to end:               {stored / total:,.0f} events/s ({total:.0f} s)")
    print(f"ingest only:              {stored / seconds['ingest']:,.0f} events/s")
    print(f"correlation only:         {stored / seconds['correlate']:,.0f} events/s")
    print(f"reconciliation only:      {stored / seconds['reconcile']:,.0f} events/s ({seconds['reconcile']:.0f} s)")
    small, large = statistics.median(probes["10%"]), statistics.median(probes["100%"])
    for label, value in (("10%", small), ("100%", large)):
        print(
            f"per-batch reconciliation at {probe_points[label]:,} events: {value * 1000:.1f} ms "
            f"(median of {len(probes[label])} batches of {BATCH:,} events)"
        )
    print(f"ratio (target <= 1.5):    {large / small:.2f}")
    _print_query_growth(query_time, PROBE_BATCHES)

    # The periodic refresh (every 5 minutes in production) has the run's days to rebuild; the page reads the days
    # still marked from the results, so it is measured both ways: every day rebuilt, and the latest day dirty (the
    # steady state while a day fills).
    from exceptions.models import ReconciliationDirtyDay
    from exceptions.services import reconciliation_rollups_refresh
    from exceptions.services.reconciliation_rollups import reconciliation_days_mark_dirty

    dirty_days = sorted(ReconciliationDirtyDay.objects.values_list("day", flat=True))
    t0 = time.perf_counter()
    while ReconciliationDirtyDay.objects.exists():
        reconciliation_rollups_refresh()
    print(f"rollup refresh:           {len(dirty_days)} dirty days rebuilt in {time.perf_counter() - t0:.1f} s")

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.test import Client

    user = get_user_model().objects.create_user("bench-manager")
    user.groups.add(Group.objects.get(name="manager"))
    client = Client()
    client.force_login(user)
    page = _measure(client, ["/reconciliation/"] * args.page_requests)
    drill = _measure(client, ["/reconciliation/results/?status=mismatched"] * args.page_requests)
    roi = _measure(client, ["/roi/"] * max(1, args.page_requests // 2))
    if dirty_days:
        reconciliation_days_mark_dirty([dirty_days[-1]])
    page_dirty = _measure(client, ["/reconciliation/"] * args.page_requests)
    for label, samples in (
        ("reconciliation page", page),
        ("page, latest day dirty", page_dirty),
        ("mismatch drill-down", drill),
        ("ROI dashboard", roi),
    ):
        print(
            f"{label + ':':<26}p50 {percentile(samples, 0.5):.0f} ms, p95 {percentile(samples, 0.95):.0f} ms "
            f"({len(samples)} requests)"
        )
    load = os.getloadavg()
    print(f"load average (1/5/15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")


class QueryClock:
    """Time per SQL statement shape (IN lists and VALUES rows folded) during the probe batches: which query grows."""

    def __init__(self, into: list[dict[str, list[float]]]) -> None:
        self.into = into

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            shape = re.sub(r"\(%s(::\w+)?(, %s(::\w+)?)*\)", "(...)", sql)
            shape = re.sub(r"(, \(\.\.\.\))+", ", ...", shape)
            for times in self.into:
                times.setdefault(shape, []).append(time.perf_counter() - t0)


def _print_query_growth(query_time: dict[str, dict[str, list[float]]], batches: int) -> None:
    small, large = query_time["10%"], query_time["100%"]
    print("per-batch time by query (10% -> 100%, ms per batch), the largest at 100%:")
    for shape in sorted(large, key=lambda q: -sum(large[q]))[:8]:
        before, after = sum(small.get(shape, [])) * 1000 / batches, sum(large[shape]) * 1000 / batches
        print(f"  {before:7.1f} -> {after:7.1f}  {len(large[shape]) / batches:5.1f}/batch  {shape[:110]}")


def _measure(client: object, urls: list[str]) -> list[float]:
    samples = []
    for url in urls:
        t0 = time.perf_counter()
        response = client.get(url)
        samples.append((time.perf_counter() - t0) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return samples


if __name__ == "__main__":
    main()

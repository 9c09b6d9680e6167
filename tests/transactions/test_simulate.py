import ast
import io
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from transactions.canonical import normalise_key, parse_canonical
from transactions.models import DeadLetter, Event, IngestBatch, IngestToken
from transactions.simulation.builder import BusinessTransaction, SimEvent
from transactions.simulation.catalogue import FAILURE_KINDS, FAILURES, SYSTEMS, parse_failure_weights
from transactions.simulation.estate import (
    BANK_STATEMENT_PROCESS,
    BILL_RUN_PROCESS,
    Scenario,
    deliveries,
    generate,
)
from transactions.simulation.history import WINDOW, history_run

SCHEDULED_PROCESSES = (BILL_RUN_PROCESS, BANK_STATEMENT_PROCESS)
PURE_MODULES = ("catalogue", "builder", "processes", "estate", "wire")
CODE_TO_KIND = {code: f.name for f in FAILURES for code, _ in (*f.variants, *f.phrasings) if code}
# A phrasing without a code (the SAP message id inside the text) names its kind by its exception type.
TYPE_TO_KIND = {f.error_type: f.name for f in FAILURES if any(not code for code, _ in f.phrasings)}
ERROR_KINDS = {f.name for f in FAILURES if not f.delivery}
FIXED_END = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)


def scenario(*, seed: int = 11, days: float = 14, rate: float = 0.8, failure_rate: float = 0.6, **kw) -> Scenario:
    # A long, sparse window: procure-to-pay takes days to reach its supplier invoice, so a short one would cut it off.
    # A fixed end: the estate follows business hours, so a window ending "now" holds a different mix of failures at
    # each hour of the week, and a rare kind (one SoD violation) was missing at some hours.
    end = kw.pop("end", None) or FIXED_END
    return Scenario(
        seed=seed,
        start=end - timedelta(days=days),
        end=end,
        rate_per_hour=rate,
        failure_rate=failure_rate,
        **kw,
    )


def dedup_key(event: SimEvent) -> str:
    """The idempotency key ingest gives this record (see the decoders)."""
    if event.channel == "native":
        return f"event:{event.record['event_id']}"
    if event.channel == "cloudevents":
        return f"ce:{event.cloudevent['source']}\n{event.cloudevent['id']}"
    return f"span:{event.record['trace_id']}:{event.record['span_id']}"


def stored(event: SimEvent) -> Event:
    return Event.objects.get(source__name=event.system, dedup_key=dedup_key(event))


def overtaken(txns: list[BusinessTransaction]) -> list[tuple[SimEvent, SimEvent]]:
    """(earlier step, the later step that overtook it) of out-of-order transactions, where both were delivered."""
    pairs = []
    for txn in (t for t in txns if t.failure == "out_of_order"):
        moved = [i for i, e in enumerate(txn.events) if e.anomaly]
        if moved and moved[0] + 1 < len(txn.events):
            pairs.append((txn.events[moved[0]], txn.events[moved[0] + 1]))
    return pairs


# ---- The estate alone: pure and deterministic -----------------------------------------------------------------------


def test_the_estate_is_pure_python():
    root = Path(__file__).resolve().parents[2] / "transactions" / "simulation"
    for name in PURE_MODULES:
        tree = ast.parse((root / f"{name}.py").read_text())
        imported = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        outside = ("django", "console", "transactions.")
        impure = [m for m in imported if m.startswith(outside) and not m.startswith("transactions.simulation.")]
        assert not impure, f"{name}.py imports {impure}"


def test_the_same_seed_and_window_give_the_same_estate_and_another_seed_another():
    end = timezone.now()

    def run(seed: int) -> list[tuple]:
        txns = list(generate(scenario(seed=seed, days=3, rate=4, end=end)))
        # Malformed CloudEvents lack the id their idempotency key is made of.
        return [(e.channel, e.record, e.cloudevent, e.deliver_at) for t in txns for e in t.events if not e.malformed]

    first = run(7)
    assert first and first == run(7)
    keys = {dedup_key(SimEvent(r, channel, at, at, ce)) for channel, r, ce, at in first}
    assert not keys & {dedup_key(SimEvent(r, channel, at, at, ce)) for channel, r, ce, at in run(8)}


def test_generated_records_are_valid_canonical_events_on_their_channels():
    txns = list(generate(scenario(days=3, rate=4)))
    events = [e for t in txns for e in t.events]
    assert {e.channel for e in events} == {"native", "otlp_traces", "cloudevents"}
    for event in events:
        if event.malformed:
            continue  # meant to be rejected: see the history test
        parse_canonical(event.record, require_event_id=event.channel == "native")
        if event.channel == "cloudevents":
            assert event.cloudevent["source"].startswith(SYSTEMS[event.system].alias_pattern.rstrip("*"))
            assert event.cloudevent["type"] == event.record["kind"]
        if event.channel == "otlp_traces":
            assert len(event.record["trace_id"]) == 32 and len(event.record["span_id"]) == 16
    # The CRM -> iPaaS -> ERP hops of one order share the CRM's trace, each hop a child of the one before.
    o2c = next(t for t in txns if t.process == "order-to-cash" and len(t.events) >= 4 and not t.failure)
    crm, _clm, ipaas, erp = o2c.events[:4]
    assert crm.record["trace_id"] == ipaas.record["trace_id"] == erp.record["trace_id"]
    assert ipaas.record["parent_span_id"] == crm.record["span_id"]
    assert erp.cloudevent["traceparent"] == f"00-{erp.record['trace_id']}-{erp.record['span_id']}-01"


def e_kind(event):
    return FAILURE_KINDS[event.failure]


def test_every_failure_carries_a_realistic_error_and_the_anomalies_move_deliveries():
    txns = list(generate(scenario()))
    errors = [e for t in txns for e in t.events if e.failure]
    assert {e.failure for e in errors} == ERROR_KINDS
    for event in errors:
        kind = FAILURE_KINDS[event.failure]
        error = event.record["error"]
        assert event.record["status"] == "error" and event.channel in ("native", "otlp_traces")
        codes = {code for code, _ in kind.variants} | {code or None for code, _ in kind.phrasings}
        assert error["code"] in codes and error["type"] == kind.error_type
        assert "{" not in error["message"] and len(error["message"]) > 25
        assert event.record["attributes"].get("http.response.status_code") in {status for _, status in kind.variants}
    # Failures vary their phrasing as real systems do (SAP message ids in several notations).
    phrased = [e for e in errors if any(e.record["error"]["code"] == (c or None) for c, _ in e_kind(e).phrasings)]
    assert {e.failure for e in phrased} == {f.name for f in FAILURES if f.phrasings}
    pairs = overtaken(txns)
    assert pairs
    for earlier, later in pairs:
        assert earlier.occurred_at <= later.occurred_at and earlier.deliver_at > later.deliver_at
    late = [e for t in txns for e in t.events if e.anomaly == "late_event"]
    assert late and max(e.deliver_at - e.occurred_at for e in late) > timedelta(hours=12)
    copies = [e for t in txns for e in t.events if e.redelivery]
    assert copies and all(c.anomaly == "duplicate_delivery" for c in copies)


@pytest.mark.parametrize("kind", sorted(ERROR_KINDS))
def test_every_site_of_a_failure_kind_is_reached(kind):
    # A site names a process step; a renamed step would otherwise silently never fail.
    txns = generate(scenario(days=10, rate=1, failure_rate=1, failure_weights={kind: 1}))
    reached = {(t.process, e.record["kind"]) for t in txns for e in t.events if e.failure}
    assert reached == set(FAILURE_KINDS[kind].sites)


def test_failure_weights_are_parsed_and_checked():
    assert parse_failure_weights("erp_timeout=3, credit_block") == {"erp_timeout": 3.0, "credit_block": 1.0}
    with pytest.raises(ValueError, match="unknown failure kind 'nope'; known kinds: tax_code_mismatch"):
        parse_failure_weights("nope=1")
    only = list(generate(scenario(days=3, rate=4, failure_rate=1, failure_weights={"credit_block": 1})))
    only = [t for t in only if t.process not in SCHEDULED_PROCESSES]  # the bill run and bank statement never fail
    assert {t.failure for t in only} == {"credit_block"} and {t.process for t in only} == {"order-to-cash"}


# ---- History mode through the real decoders and ingest service ------------------------------------------------------


@pytest.mark.django_db
def test_history_stores_every_system_channel_and_failure_kind_through_ingest():
    plan = scenario()
    stats = history_run(scenario=plan)
    txns = list(generate(plan))
    sent = deliveries(txns)

    # Malformed records are rejected alone, each kept once in the dead-letter store; everything else is stored.
    malformed = [e for e in sent if e.malformed]
    assert malformed and {e.channel for e in malformed} == {"native", "cloudevents"}
    assert stats.delivered == len(sent) and stats.rejected == len(malformed)
    assert DeadLetter.objects.count() == len(malformed)
    reasons = set(DeadLetter.objects.values_list("reason", flat=True))
    assert any("not a decimal number" in r for r in reasons) and any("id is missing" in r for r in reasons)
    assert Event.objects.count() == stats.accepted == len(sent) - stats.duplicates - len(malformed)
    assert set(Event.objects.values_list("system", flat=True)) == set(SYSTEMS)
    assert set(Event.objects.values_list("channel", flat=True)) == {"native", "otlp_traces", "cloudevents"}

    # Failures, by the error codes the failing systems report.
    errors = list(Event.objects.filter(status="error").values_list("error", flat=True))
    assert {CODE_TO_KIND.get(e["code"]) or TYPE_TO_KIND[e["type"]] for e in errors} == ERROR_KINDS
    assert all(e["message"] and e["type"] for e in errors)

    # Duplicate delivery: the second delivery is counted by ingest and stored once.
    copies = [e for e in sent if e.redelivery]
    assert copies and stats.duplicates == len(copies)
    assert sum(IngestBatch.objects.values_list("duplicates", flat=True)) == len(copies)
    assert all(Event.objects.filter(dedup_key=dedup_key(c)).count() == 1 for c in copies)

    # Late events arrive half a day or more after they occurred; everything else within the batch window.
    late = {dedup_key(e) for e in sent if e.anomaly and not e.malformed}
    lags = {
        key: received - occurred
        for key, received, occurred in Event.objects.values_list("dedup_key", "received_at", "occurred_at")
    }
    assert any(lags[dedup_key(e)] > timedelta(hours=12) for e in sent if e.anomaly == "late_event")
    assert all(lag <= WINDOW + timedelta(minutes=2) for key, lag in lags.items() if key not in late)

    # Out of order: the earlier step reaches Closeloop only after the later step has happened.
    pairs = overtaken(txns)
    assert pairs
    for earlier, later in pairs:
        assert stored(earlier).received_at > stored(later).occurred_at

    # SAP writes 0000012345 where the CRM and billing write 12345: both become the same business key.
    billed = Event.objects.filter(system="zuora-billing", kind="invoice.posted").first()
    key = billed.business_keys["order"]  # sent by billing as 12345
    order = Event.objects.get(kind__endswith="SalesOrder.Created.v1", business_keys__order=key)
    padded = order.attributes["data"]["SalesOrder"]
    assert padded.startswith("0000") and order.business_keys["order"] == padded.lstrip("0")
    assert order.business_keys["order"] == normalise_key("order", padded)
    partner = Event.objects.filter(kind__endswith="BusinessPartner.Created.v1").first()
    assert partner.attributes["data"]["BusinessPartner"].startswith("0000")
    assert Event.objects.filter(
        system="salesforce-crm", kind="account.created", business_keys__customer=partner.business_keys["customer"]
    ).exists()

    # The same seed and window again: every record is one ingest has seen, so nothing new is stored; the malformed
    # ones are rejected again and counted as repeats of the dead letters kept.
    again = history_run(scenario=plan)
    assert (again.accepted, again.duplicates, again.rejected) == (0, len(sent) - len(malformed), len(malformed))
    assert Event.objects.count() == stats.accepted
    assert DeadLetter.objects.count() == len(malformed)


@pytest.mark.django_db
def test_command_prints_its_seed_progress_and_summary():
    out, err = io.StringIO(), io.StringIO()
    call_command("simulate", "--days", "0.5", "--rate", "8", "--seed", "5", stdout=out, stderr=err)
    assert "seed 5 (repeat with --seed 5)" in out.getvalue()
    assert "ingest answered:" in out.getvalue() and "events per system:" in out.getvalue()
    assert "(100%)" in err.getvalue() and "ev/s ETA" in err.getvalue()
    quiet = io.StringIO()
    call_command("simulate", "--days", "0.2", "--quiet", stdout=quiet, stderr=err)
    assert quiet.getvalue().count("\n") == 1 and quiet.getvalue().startswith("simulate: ")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--days", "-1"], "--days must be a number above 0"),
        (["--days", "400"], "--days must be at most 366"),
        (["--rate", "0"], "--rate must be a number above 0"),
        (["--duration", "inf"], "--duration must be a number above 0"),
        (["--failure-rate", "1.5"], "--failure-rate must be between 0 and 1"),
        (["--failures", "erp_timeout=2,nope=1"], "unknown failure kind 'nope'; known kinds: tax_code_mismatch"),
        (["--failures", "erp_timeout=x"], "weight of erp_timeout must be a number"),
        (["--mode", "live", "--url", "http://127.0.0.1:9"], "nothing answers at http://127.0.0.1:9"),
    ],
)
def test_invalid_arguments_are_readable_command_errors(args, message):
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        call_command("simulate", *args)


def test_live_mode_without_the_opentelemetry_sdk_says_what_to_install(monkeypatch):
    monkeypatch.delitem(sys.modules, "transactions.simulation.live", raising=False)
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(CommandError, match=r"live mode needs the OpenTelemetry SDK .*pip install -e '\.\[dev\]'$"):
        call_command("simulate", "--mode", "live")


# ---- Live mode over HTTP --------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_live_mode_sends_spans_native_events_and_cloudevents_over_http(live_server):
    from transactions.simulation.live import live_run

    start = timezone.now() + timedelta(seconds=0.5)
    plan = Scenario(seed=3, start=start, end=start + timedelta(seconds=3), rate_per_hour=600 * 60, live=True)
    stats = live_run(scenario=plan, url=live_server.url)

    assert stats.spans_exported > 0 and stats.spans_failed == 0 and stats.rejected == 0
    spans = Event.objects.filter(channel="otlp_traces")
    assert set(spans.values_list("system", flat=True)) == {"salesforce-crm", "mulesoft-ipaas"}
    assert spans.filter(business_keys__has_key="contract").exists() or spans.filter(kind="account.created").exists()
    assert Event.objects.filter(channel="native").exists()
    # CloudEvents `source` URIs were mapped to system names through the simulator's aliases.
    assert set(Event.objects.filter(channel="cloudevents").values_list("system", flat=True)) <= {
        "sap-s4",
        "stripe-payments",
    }
    assert Event.objects.filter(channel="cloudevents").exists()
    assert Event.objects.count() == stats.accepted + stats.spans_exported
    assert not IngestToken.objects.filter(revoked_at__isnull=True).exists()

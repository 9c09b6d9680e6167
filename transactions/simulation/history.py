"""History mode: days of back-dated traffic, stored quickly through the same decoders and service as the HTTP views.

Nothing goes over HTTP, but every record takes the path a request body takes: native JSON through `decode_native`,
OTLP protobuf through `decode_traces`, CloudEvents batches through `decode_cloudevents`, then `records_ingest` with
the delivery time as the receive time, so late and out-of-order deliveries look exactly as they would have.
"""

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import groupby

from transactions import cloudevents, native, otlp
from transactions.choices import Channel
from transactions.records import DecodedRecord
from transactions.services import correlating_key_types, records_ingest
from transactions.simulation import wire
from transactions.simulation.builder import SimEvent
from transactions.simulation.estate import Scenario, deliveries, generate
from transactions.simulation.progress import Progress, RunStats, Write
from transactions.simulation.sources import simulator_sources_ensure

# Records reaching one source within the same twelve hours arrive as one batch, as from a collector's sending queue:
# each batch is a correlation task (and its SLA, stall and evidence follow-ups) run in-process, whose fixed cost made
# most of the history's time, so fewer, larger batches keep history fast. A late event is late by half a day or more,
# so it never shares the batch of the events of its own time (windows are aligned: t and t + 12 h never share one).
WINDOW = timedelta(hours=12)
MAX_BATCH = 1000
# `make demo` serves the console once this much history is stored and fills the rest while people look around.
FIRST_SPAN = timedelta(days=1)

DEFAULT_HISTORY_RATE = 5.0  # business transactions per hour: about 15,000 events over the default 21 days
# Realistic SLA pressure by default: Stripe's webhooks stop arriving for the last 4 working hours, and one control's
# evidence in ten is never captured.
DEFAULT_SILENCE = "stripe-payments=4"
DEFAULT_EVIDENCE_LOSS = 0.1


def history_scenario(*, days: float, seed: int, now: datetime) -> Scenario:
    """The default history of `days` up to `now`, as `simulate` runs it without options (serve_demo uses it)."""
    system, _, hours = DEFAULT_SILENCE.partition("=")
    return Scenario(
        seed=seed,
        start=now - timedelta(days=days),
        end=now,
        rate_per_hour=DEFAULT_HISTORY_RATE,
        silent_system=system,
        silence=timedelta(hours=float(hours)),
        evidence_loss=DEFAULT_EVIDENCE_LOSS,
    )


def decode(channel: str, events: list[SimEvent]) -> list[DecodedRecord]:
    """`events` encoded as their channel's request body, decoded by that channel's ingest decoder."""
    if channel == Channel.NATIVE:
        return native.decode_native(wire.native_body(events), content_type="application/json")
    if channel == Channel.CLOUDEVENTS:
        return cloudevents.decode_cloudevents(
            wire.cloudevents_body(events), content_type=cloudevents.CONTENT_TYPE_BATCH, headers={}
        )
    body = wire.otlp_traces_request(events).SerializeToString()
    return otlp.decode_traces(body, content_type=otlp.CONTENT_TYPE_PROTOBUF)


def _window(event: SimEvent) -> int:
    return int(event.deliver_at.timestamp() // WINDOW.total_seconds())


def history_run(
    *, scenario: Scenario, write: Write | None = None, first_span_stored: Callable[[], None] | None = None
) -> RunStats:
    """Generate the scenario and store every delivery, window by window in delivery order; `write` gets progress.

    `first_span_stored` is called once the first FIRST_SPAN of deliveries is stored (or the run ends sooner), so that
    a caller can start serving while the rest is stored.
    """
    started = time.monotonic()
    first_span_end = scenario.start + FIRST_SPAN
    sources = simulator_sources_ensure()
    transactions = list(generate(scenario))
    stats = RunStats()
    stats.count_transactions(transactions, correlating_key_types())
    queue = deliveries(transactions)
    progress = Progress(total=len(queue), write=write)
    for _, window in groupby(queue, key=_window):
        window = list(window)
        if first_span_stored is not None and window[0].deliver_at >= first_span_end:
            first_span_stored()
            first_span_stored = None
        batches: dict[tuple[str, str], list[SimEvent]] = {}
        for event in window:
            batches.setdefault((event.system, event.channel), []).append(event)
        for (system, channel), events in batches.items():
            for start in range(0, len(events), MAX_BATCH):
                chunk = events[start : start + MAX_BATCH]
                outcome = records_ingest(
                    source=sources[system],
                    channel=channel,
                    records=decode(channel, chunk),
                    received_at=chunk[-1].deliver_at,
                )
                stats.count_delivery(system=system, channel=channel, count=len(chunk))
                stats.count_answer(
                    accepted=outcome.accepted, duplicates=outcome.duplicates, rejected=len(outcome.rejected)
                )
                progress.advance(len(chunk))
    progress.finish()
    if first_span_stored is not None:
        first_span_stored()
    stats.seconds = time.monotonic() - started
    return stats

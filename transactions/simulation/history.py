"""History mode: days of back-dated traffic, stored quickly through the same decoders and service as the HTTP views.

Nothing goes over HTTP, but every record takes the path a request body takes: native JSON through `decode_native`,
OTLP protobuf through `decode_traces`, CloudEvents batches through `decode_cloudevents`, then `records_ingest` with
the delivery time as the receive time, so late and out-of-order deliveries look exactly as they would have.
"""

import time
from datetime import timedelta
from itertools import groupby

from transactions import cloudevents, native, otlp
from transactions.choices import Channel
from transactions.records import DecodedRecord
from transactions.services import records_ingest
from transactions.simulation import wire
from transactions.simulation.builder import SimEvent
from transactions.simulation.estate import Scenario, deliveries, generate
from transactions.simulation.progress import Progress, RunStats, Write
from transactions.simulation.sources import simulator_sources_ensure

# Records reaching one source within the same six hours arrive as one batch, as from a collector's sending queue:
# each batch is a correlation task run in-process, so fewer, larger batches keep history fast, and six hours stay
# below the half day and more by which a late event is late.
WINDOW = timedelta(hours=6)
MAX_BATCH = 1000


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


def history_run(*, scenario: Scenario, write: Write | None = None) -> RunStats:
    """Generate the scenario and store every delivery, window by window in delivery order; `write` gets progress."""
    started = time.monotonic()
    sources = simulator_sources_ensure()
    transactions = list(generate(scenario))
    stats = RunStats()
    stats.count_transactions(transactions)
    queue = deliveries(transactions)
    progress = Progress(total=len(queue), write=write)
    for _, window in groupby(queue, key=_window):
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
    stats.seconds = time.monotonic() - started
    return stats

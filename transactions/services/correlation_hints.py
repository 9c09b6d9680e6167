"""Correlation hints: after a batch's commit, tell a worker (through the broker) that it waits for correlation.

A hint is only a hint: the database, not the broker, records which batches are still to correlate
(`IngestBatch.correlated_at`), and the sweep (`sweep_uncorrelated_batches`) takes any batch whose hint was lost.
"""

import logging
import os
import queue
import threading
import time

logger = logging.getLogger(__name__)


def _correlation_publish(batch_id: int) -> None:
    """Hint the broker that a stored batch waits for correlation, within a bounded time and never raising.

    Celery's defaults would retry the connection and subscribe to the result backend for ~20 s before failing; here
    one connection attempt (within CELERY_BROKER_CONNECTION_TIMEOUT), no publish retry and no result subscription
    bound it. A batch whose hint is lost is found by the sweep (`sweep_uncorrelated_batches`): the database, not the
    broker, is the record of what is still to do.
    """
    # Imported here: tasks call these services, so a module-level import would be a cycle.
    from transactions.tasks import correlate_batch

    app = correlate_batch.app
    try:
        with app.producer_or_acquire() as producer:
            # One attempt, bounded by the broker connection timeout (settings); a pooled connection is reused as is.
            producer.connection.ensure_connection(max_retries=0)
            correlate_batch.apply_async((batch_id,), producer=producer, retry=False, ignore_result=True)
    except Exception as exc:  # whatever the broker does, the stored batch stays stored and the sweep takes it
        logger.warning("ingest.enqueue_failed", extra={"batch_id": batch_id, "error": str(exc)})


# A publisher thread sends at most one round of hints per interval: a correlate task takes every batch still waiting
# (oldest first, up to its event budget), so one hint stands for all the batches this process stored meanwhile. A
# publish cost more CPU than the rest of a single-event request (about 1.5 ms against 1.4 ms, in the same process);
# at 0.05 s the publisher was still 4-8 % of a web worker's CPU under single events (py-spy); 0.2 s publishes a
# quarter as often, and a correlation pass starts at most 0.2 s later (the first batch after a quiet spell at once).
HINT_INTERVAL_SECONDS = 0.2


class _HintPublisher:
    """Publishes correlation hints from one background thread per process, so that no request waits for the broker,
    coalesced: the first batch after a quiet spell is hinted at once, the batches stored while that publish and the
    interval after it pass are hinted together, one hint per correlate task's worth of events (`hint_leads`).

    Nothing is lost by the coalescing, as nothing is lost by a broker that is down: every batch is committed before
    it is queued here, and the database, not the broker, records what is still to correlate. A batch that a
    coalesced hint's pass did not reach (a backlog of over a task's budget) or whose hint was lost (the process
    ended first, the broker was down) is taken by a later pass or by the sweep (`sweep_uncorrelated_batches`)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._pending = 0
        self._idle = threading.Condition(self._lock)

    def submit(self, batch_id: int, events: int) -> None:
        with self._lock:
            # After a fork the parent's thread is gone: start one in this process.
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="correlation-hints", daemon=True)
                self._thread.start()
            self._pending += 1
        self._queue.put((batch_id, events))

    def _run(self) -> None:
        from transactions.tasks import COALESCE_EVENTS

        while True:
            taken = [self._queue.get()]
            while True:
                try:
                    taken.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                for lead in hint_leads(taken, budget=COALESCE_EVENTS):
                    _correlation_publish(lead)
            finally:
                with self._lock:
                    self._pending -= len(taken)
                    self._idle.notify_all()
            time.sleep(HINT_INTERVAL_SECONDS)

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queued hint was published or given up (tests, orderly shutdown)."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)


def hint_leads(batches: list[tuple[int, int]], *, budget: int) -> list[int]:
    """The batches to hint for `batches` ((id, events) in the order stored): one per run of consecutive batches of up
    to `budget` events (a larger batch is a run of its own), the newest of each run. Its pass takes the waiting
    batches oldest first, the run's older ones among them unless a backlog older still fills the pass first (a later
    pass or the sweep takes them then); and a pass that took the newest as one of its others took the older ones
    waiting before it too."""
    leads: list[int] = []
    run_events = 0
    for batch_id, events in batches:
        if leads and run_events + events <= budget:
            leads[-1] = max(leads[-1], batch_id)
            run_events += events
        else:
            leads.append(batch_id)
            run_events = events
    return leads


_hints = _HintPublisher()


def correlation_hint_enqueue(batch_id: int, events: int) -> None:
    """After the batch's commit: correlate it in-process (no broker: the quick start and tests), or queue its hint
    for the publisher thread and return at once."""
    from transactions.tasks import correlate_batch

    if correlate_batch.app.conf.task_always_eager:
        correlate_batch.delay(batch_id)  # in-process (no broker): nothing to wait for, and errors are the task's own
        return
    _hints.submit(batch_id, events)


def correlation_hints_wait(timeout: float = 10.0) -> bool:
    """Block until this process has published (or given up on) every queued correlation hint."""
    return _hints.wait_idle(timeout)

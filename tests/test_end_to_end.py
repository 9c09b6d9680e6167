"""From an HTTP request to a case in a queue, through the real chain: ingest stores and enqueues on commit, the
correlation task announces failed events by signal, the exceptions receiver enqueues classification, and that task
opens the case. Nothing here calls a service to move the work along; the tasks run in-process (eager), and the
database commits for real so that every `on_commit` hook fires."""

import json

import pytest
from celery.signals import task_prerun

from exceptions.models import Case
from tests.factories import failure, reference_data_load
from transactions.models import Event, Transaction
from transactions.services import ingest_source_create, ingest_token_create

pytestmark = [
    pytest.mark.postgres(reason="end to end means on the production database: partitioned events, advisory locks"),
    pytest.mark.django_db(transaction=True),
]


def test_a_failing_event_sent_over_http_opens_a_case(client):
    reference_data_load()
    source = ingest_source_create(name="erp-gateway", actor="system:test")
    _, token = ingest_token_create(source=source, actor="system:test")
    record = failure(order="SO-4711")
    tasks_run: list[str] = []

    def note(sender: object = None, task: object = None, **kwargs: object) -> None:
        tasks_run.append(task.name)

    task_prerun.connect(note, weak=False)
    try:
        response = client.post(
            "/api/v1/events",
            data=json.dumps([record]),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"},
        )
    finally:
        task_prerun.disconnect(note)

    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 1, "duplicates": 0, "rejected": []}
    # Interface discovery (the integration map) follows every correlated batch too, beside the chain to the case.
    assert "transactions.tasks.discover_interfaces" in tasks_run
    chain = [t for t in tasks_run if t != "transactions.tasks.discover_interfaces"]
    assert chain[:2] == ["transactions.tasks.correlate_batch", "exceptions.tasks.classify_failures"]
    event = Event.objects.get(event_id=record["event_id"])
    case = Case.objects.get()
    occurrence = case.occurrences.get()
    assert occurrence.event_id == event.pk
    assert occurrence.txn == Transaction.objects.get(business_keys__order=["SO-4711"])
    assert (case.system, case.kind, case.status, case.occurrence_count) == ("sap-s4", "order.create", "open", 1)
    assert case.category.slug != "unclassified" and case.queue_id is not None

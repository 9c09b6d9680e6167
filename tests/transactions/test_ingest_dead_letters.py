"""CloudEvents without `time`, and dead letters deduplicated per source and content (issue 12, item 9)."""

import json
import threading

import pytest
from django.db import connections
from django.test import Client

from tests.factories import canonical
from tests.transactions.test_ingest_cloudevents import sap_event
from transactions.choices import DeadLetterStatus
from transactions.models import DeadLetter, Event
from transactions.services import dead_letter_discard, ingest_source_create, ingest_token_create

CE_URL = "/api/v1/cloudevents"
URL = "/api/v1/events"


@pytest.mark.django_db
def test_a_cloudevent_without_time_is_stored_at_its_receive_time_and_marked(send):
    event = sap_event("no-time")
    del event["time"]
    response = send(CE_URL, event, content_type="application/cloudevents+json")
    assert response.status_code == 200 and response.json()["accepted"] == 1, response.content
    stored = Event.objects.get()
    assert abs((stored.occurred_at - stored.received_at).total_seconds()) < 1
    assert stored.attributes["finance.occurred_at_source"] == "received"
    timed = send(CE_URL, sap_event("timed"), content_type="application/cloudevents+json")
    assert timed.json()["accepted"] == 1
    assert "finance.occurred_at_source" not in Event.objects.exclude(pk=stored.pk).get().attributes


@pytest.mark.django_db
def test_the_same_rejected_record_sent_again_is_one_dead_letter_counting_repeats(send, source):
    bad = canonical(event_id="bad", currency="euro")
    for _ in range(3):
        assert send(URL, [canonical(event_id="good"), bad]).json()["rejected"][0]["index"] == 1
    letter = DeadLetter.objects.get()
    assert letter.repeats == 2 and letter.last_received_at >= letter.received_at
    assert letter.raw["currency"] == "euro" and letter.record_index == 1
    send(URL, [bad, bad])  # twice in one batch too
    assert DeadLetter.objects.get().repeats == 4
    other = canonical(event_id="bad", currency="dollars")
    send(URL, [other])
    assert DeadLetter.objects.count() == 2  # other content, other letter


@pytest.mark.django_db
def test_dead_letters_are_deduplicated_per_source_and_only_while_pending(send, client, source):
    bad = [canonical(event_id="bad", currency="euro")]
    send(URL, bad)
    other = ingest_source_create(name="second-sender", actor="system:test")
    _, other_token = ingest_token_create(source=other, actor="system:test")
    client.post(URL, bad, content_type="application/json", headers={"Authorization": f"Bearer {other_token}"})
    assert DeadLetter.objects.count() == 2  # per source
    first = DeadLetter.objects.get(source=source)
    dead_letter_discard(dead_letter=first, actor="system:test", expected_version=first.version)
    send(URL, bad)
    assert DeadLetter.objects.filter(source=source).count() == 2
    assert DeadLetter.objects.get(source=source, status=DeadLetterStatus.PENDING).repeats == 0


@pytest.mark.django_db
def test_an_undecodable_body_sent_twice_is_one_dead_letter(send):
    assert send(URL, b"{not json").status_code == 400
    assert send(URL, b"{not json").status_code == 400
    assert DeadLetter.objects.get().repeats == 1


@pytest.mark.postgres(reason="two transactions racing on the same new dead letter")
@pytest.mark.django_db(transaction=True)
def test_racing_batches_rejecting_the_same_record_make_one_letter():
    source = ingest_source_create(name="racer", actor="system:test")
    _, token = ingest_token_create(source=source, actor="system:test")
    body = json.dumps([canonical(event_id="race", currency="euro")])
    statuses = []

    def post():
        try:
            response = Client().post(
                URL, body, content_type="application/json", headers={"Authorization": f"Bearer {token}"}
            )
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [200] * 4
    assert DeadLetter.objects.get(source=source).repeats == 3


@pytest.mark.django_db
def test_the_dead_letter_page_shows_how_often_the_record_came_again(send, client, role_user):
    from django.urls import reverse

    for _ in range(3):
        send(URL, [canonical(event_id="bad", currency="euro")])
    client.force_login(role_user("integration"))
    letter = DeadLetter.objects.get()
    assert "received again 2 times" in client.get(reverse("dead-letter-detail", args=[letter.pk])).content.decode()
    assert "+2" in client.get(reverse("dead-letter-list")).content.decode()

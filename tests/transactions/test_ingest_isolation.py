"""Per-record isolation: one record that cannot be read on its own is rejected alone, with its index and reason, kept in
the dead-letter store, and the rest of the batch is stored (issue 12, item 8)."""

import json

import pytest

from tests.factories import canonical
from transactions.models import DeadLetter, Event

URL = "/api/v1/events"
DEEP = '{"a":' * 10_000 + "1" + "}" * 10_000


def _rejections(response) -> dict[int, str]:
    assert response.status_code == 200, response.content[:300]
    return {r["index"]: r["error"] for r in response.json()["rejected"]}


@pytest.mark.django_db
def test_a_record_nested_10000_levels_deep_is_rejected_alone(send):
    deep_attributes = canonical(event_id="deep", attributes={"x": "PLACEHOLDER"})
    text = json.dumps(deep_attributes).replace('"PLACEHOLDER"', DEEP)
    body = f"[{json.dumps(canonical(event_id='before'))},\n{text},\n{json.dumps(canonical(event_id='after'))}]"
    response = send(URL, body.encode())
    rejected = _rejections(response)
    assert list(rejected) == [1] and "nested more than 100 levels" in rejected[1]
    assert response.json()["accepted"] == 2
    assert set(Event.objects.values_list("event_id", flat=True)) == {"before", "after"}
    letter = DeadLetter.objects.get()
    assert letter.record_index == 1 and "nested" in letter.reason
    assert letter.raw["line"].startswith('{"event_id": "deep"') and "\n" not in letter.raw["line"]


@pytest.mark.django_db
def test_a_record_nested_deeper_than_the_limit_but_parseable_is_rejected_alone(send):
    nested = json.loads("[" * 300 + "]" * 300)
    response = send(URL, [canonical(event_id="ok"), canonical(event_id="deep", attributes={"x": nested})])
    rejected = _rejections(response)
    assert list(rejected) == [1] and "nested more than 100 levels" in rejected[1]
    assert Event.objects.get().event_id == "ok"


@pytest.mark.django_db
def test_one_ndjson_line_of_invalid_utf8_or_too_deep_is_rejected_alone(send):
    lines = [
        json.dumps(canonical(event_id="n-1")).encode(),
        b'{"event_id": "bad-\xff\xfe"}',
        DEEP.encode(),
        json.dumps(canonical(event_id="n-2")).encode(),
    ]
    response = send(URL, b"\n".join(lines), content_type="application/x-ndjson")
    rejected = _rejections(response)
    assert list(rejected) == [1, 2]
    assert "not UTF-8" in rejected[1] and "nested more than 100 levels" in rejected[2]
    assert response.json()["accepted"] == 2
    letters = {d.record_index: d for d in DeadLetter.objects.all()}
    assert letters[1].raw == {"line": '{"event_id": "bad-\\xff\\xfe"}'}


@pytest.mark.django_db
def test_a_duplicate_key_rejects_that_record_with_a_reason(send):
    duplicate = '{"event_id": "dup", "occurred_at": "2026-05-18T10:15:02Z", "system": "crm", "kind": "a", "kind": "b"}'
    body = f"[{json.dumps(canonical(event_id='fine'))}, {duplicate}]".encode()
    rejected = _rejections(send(URL, body))
    assert rejected == {1: "duplicate key 'kind' in one JSON object"}
    assert Event.objects.get().event_id == "fine"
    assert DeadLetter.objects.get().raw == {"line": duplicate}  # kept as sent, both values visible
    nested = '{"event_id": "dup2", "attributes": {"x": 1, "x": 2}}'
    assert "duplicate key 'x'" in _rejections(send(URL, f"[{nested}]".encode()))[0]
    assert "duplicate key" in _rejections(send(URL, nested.encode(), content_type="application/x-ndjson"))[0]


@pytest.mark.django_db
def test_a_body_that_is_not_an_array_of_records_is_still_a_400(send):
    assert send(URL, b"[" * 10_000).status_code == 400
    assert send(URL, b'[{"a": 1}, ').status_code == 400


@pytest.mark.django_db
def test_one_cloudevent_too_deep_or_with_a_repeated_key_is_rejected_alone_in_a_batch(send):
    from tests.transactions.test_ingest_cloudevents import sap_event

    deep = json.dumps(sap_event("ce-deep")).replace('"ce-deep"', '"ce-deep", "deep": ' + DEEP, 1)
    duplicate = json.dumps(sap_event("ce-dup"))[:-1] + ', "subject": "a", "subject": "b"}'
    body = f"[{json.dumps(sap_event('ce-1'))}, {deep}, {duplicate}, {json.dumps(sap_event('ce-2'))}]"
    response = send("/api/v1/cloudevents", body.encode(), content_type="application/cloudevents-batch+json")
    rejected = _rejections(response)
    assert list(rejected) == [1, 2]
    assert "nested more than 100 levels" in rejected[1] and "duplicate key 'subject'" in rejected[2]
    assert response.json()["accepted"] == 2
    assert DeadLetter.objects.get(record_index=1).raw["batch_entry_text"].startswith('{"specversion"')

import pytest

from transactions.models import DeadLetter, Event, SourceAlias
from transactions.reference import ingest_reference_data_load

URL = "/api/v1/cloudevents"
SAP_SOURCE = "/default/sap.s4.beh/0MYS4HANA"


def sap_event(event_id="e-1", type_="sap.s4.beh.salesorder.v1.SalesOrder.Created.v1", **data):
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": SAP_SOURCE,
        "type": type_,
        "time": "2026-05-18T12:15:02+02:00",
        "datacontenttype": "application/json",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "data": data or {"SalesOrder": "0000012345", "SalesOrderType": "OR"},
    }


@pytest.fixture
def rules(db, source):
    ingest_reference_data_load()
    SourceAlias.objects.create(source=source, pattern="/default/sap.s4.beh/*", system="sap-s4")


@pytest.mark.django_db
def test_structured_sap_event_with_alias_and_default_key_rules(send, rules):
    response = send(URL, sap_event(), content_type="application/cloudevents+json")
    assert response.status_code == 200 and response.json()["accepted"] == 1
    event = Event.objects.get()
    assert event.system == "sap-s4" and event.kind.endswith("SalesOrder.Created.v1")
    assert event.business_keys == {"order": "12345"}
    assert event.trace_id == "4bf92f3577b34da6a3ce929d0e0e4736" and event.span_id == "00f067aa0ba902b7"
    assert event.occurred_at.isoformat() == "2026-05-18T10:15:02+00:00"
    assert event.attributes["data"]["SalesOrderType"] == "OR"
    assert event.attributes["cloudevents.source"] == SAP_SOURCE


@pytest.mark.django_db
def test_batch_mode_counts_duplicates_by_source_and_id(send, rules):
    batch = [
        sap_event("a"),
        sap_event("b", "sap.s4.beh.billingdocument.v1.BillingDocument.Created.v1", BillingDocument="0090000001"),
        sap_event("a"),
        {"specversion": "1.0", "id": "c"},
    ]
    body = send(URL, batch, content_type="application/cloudevents-batch+json").json()
    assert (body["accepted"], body["duplicates"]) == (2, 1)
    assert body["rejected"][0]["index"] == 3
    assert Event.objects.get(attributes__data__BillingDocument="0090000001").business_keys == {"invoice": "90000001"}
    again = send(URL, sap_event("a"), content_type="application/cloudevents+json").json()
    assert again["duplicates"] == 1


@pytest.mark.django_db
def test_binary_mode_stripe_style_failure(send, rules):
    headers = {
        "ce-specversion": "1.0",
        "ce-id": "evt_1",
        "ce-source": "https://api.stripe.example/v1",
        "ce-type": "invoice.payment_failed",
        "ce-time": "2026-05-18T10:00:00Z",
    }
    data = {"object": {"id": "in_123", "customer": "cus_9", "payment_intent": "pi_7"}}
    response = send(URL, data, content_type="application/json", headers=headers)
    assert response.json()["accepted"] == 1
    event = Event.objects.get()
    assert event.status == "error" and event.error["type"] == "extraction_rule"
    assert event.business_keys == {"invoice": "IN_123", "customer": "CUS_9", "payment": "PI_7"}
    assert event.system == "https://api.stripe.example/v1"  # no alias: the source URI itself


@pytest.mark.django_db
def test_bad_bodies(send, rules):
    assert send(URL, b"{oops", content_type="application/cloudevents+json").status_code == 400
    assert send(URL, b"hello", content_type="text/plain").status_code == 415
    assert DeadLetter.objects.count() == 1

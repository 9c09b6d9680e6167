import gzip
import json

import pytest

from transactions.models import IngestSource
from transactions.services import ingest_source_create, ingest_token_create


@pytest.fixture
def source(db) -> IngestSource:
    return ingest_source_create(name="erp-gateway", actor="system:test")


@pytest.fixture
def token(source) -> str:
    return ingest_token_create(source=source, actor="system:test")[1]


@pytest.fixture
def send(client, token):
    """POST a body to an ingest endpoint with the source's token: send("/api/v1/events", [...])."""

    def post(path: str, body, *, content_type: str = "application/json", gzipped: bool = False, headers=None):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        extra = {"Authorization": f"Bearer {token}", **(headers or {})}
        if gzipped:
            data = gzip.compress(data)
            extra["Content-Encoding"] = "gzip"
        return client.generic("POST", path, data, content_type=content_type, headers=extra)

    return post


def canonical(**overrides) -> dict:
    record = {
        "event_id": "evt-1",
        "occurred_at": "2026-05-18T10:15:02Z",
        "system": "salesforce-crm",
        "kind": "contract.approved",
        "status": "ok",
        "duration_ms": 120,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
        "business_keys": {"contract": "C-1001", "customer": "ACME-01"},
        "entity": "DE01",
        "amount": "125000.00",
        "currency": "EUR",
        "approval": {"actor": "j.doe", "decision": "approved", "step": "deal-desk"},
        "attributes": {"region": "EMEA"},
    }
    record.update(overrides)
    return record

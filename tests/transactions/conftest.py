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

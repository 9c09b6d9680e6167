import pytest

from tests.factories import failures_raise, reference_data_load
from transactions.services import ingest_source_create


@pytest.fixture
def reference(db):
    reference_data_load()


@pytest.fixture
def source(db):
    return ingest_source_create(name="erp", actor="system:test")


@pytest.fixture
def raise_failures(source, reference):
    """Ingest, correlate and classify failure records (as the tasks would, in order); returns the event ids."""

    def run(*records: dict) -> list[int]:
        return failures_raise(source, *records)

    return run
